package transferapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strings"
)

// readJSON decodes the request body, a JSON object, into dst (a pointer to a struct with json tags). It answers
// 415 for another media type, 413 past maxBody, 400 for text that is not a JSON object, and 422 naming every
// unknown field and every field of the wrong type.
func readJSON(r *http.Request, w http.ResponseWriter, maxBody int64, dst any) *Problem {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return newProblem(TypeUnsupportedMedia, "send Content-Type: application/json")
	}
	if r.ContentLength > maxBody {
		return newProblem(TypeBodyTooLarge, fmt.Sprintf("the body is over %d bytes", maxBody))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return newProblem(TypeBodyTooLarge, fmt.Sprintf("the body is over %d bytes", maxBody))
		}
		return newProblem(TypeMalformedBody, "cannot read the body")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return newProblem(TypeMalformedBody, "the body must be one JSON object")
	}
	known := jsonFields(reflect.TypeOf(dst).Elem())
	var errs []FieldError
	for name := range fields {
		if !slices.Contains(known, name) {
			errs = append(errs, FieldError{Field: name, Detail: "unknown field"})
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil && len(errs) == 0 {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			errs = append(errs, FieldError{Field: typeErr.Field, Detail: "must be " + jsonKind(typeErr.Type)})
		} else {
			return newProblem(TypeMalformedBody, "the body does not decode: "+err.Error())
		}
	}
	if len(errs) > 0 {
		slices.SortFunc(errs, func(a, b FieldError) int { return strings.Compare(a.Field, b.Field) })
		return invalid(errs...)
	}
	return nil
}

// jsonFields lists the JSON names of t's exported fields.
func jsonFields(t reflect.Type) []string {
	var out []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}

// jsonKind names the JSON type a Go type decodes from.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Map:
		return "an object of strings"
	case reflect.Slice:
		return "an array"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "a whole number"
	}
	return "of another type"
}

func sortStrings(s []string) { slices.Sort(s) }

func sortFieldErrors(errs []FieldError) {
	slices.SortFunc(errs, func(a, b FieldError) int { return strings.Compare(a.Field, b.Field) })
}
