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
// 415 for another media type, 413 past maxBody, 400 for text that is not a JSON object, and one 422 naming every
// unknown field, every field given twice, every field of the wrong type and every null (no field of a request is nullable: Go would read
// null as the zero value, which the API's document does not allow).
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
	// A key given twice would be checked below by its last value only, while the decoder reads every value.
	for _, k := range repeatedKeys(body) {
		errs = append(errs, FieldError{Field: k, Detail: "given more than once"})
	}
	for name, raw := range fields {
		t, ok := known[name]
		if !ok {
			errs = append(errs, FieldError{Field: name, Detail: "unknown field"})
			continue
		}
		errs = append(errs, checkJSONValue(name, t, raw)...)
	}
	if len(errs) > 0 {
		return invalid(errs...)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil { // every field was checked above: only a bug lands here
		return newProblem(TypeMalformedBody, "the body does not decode: "+err.Error())
	}
	return nil
}

// repeatedKeys names every key given more than once within one object of body (valid JSON), each once, as a path
// from the top (metadata.order); keys inside arrays as path[].key.
func repeatedKeys(body []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(body))
	var out []string
	var walk func(path string) error // the value's nesting is bounded by json.Unmarshal's, which accepted body
	walk = func(path string) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]int{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				k, _ := kt.(string)
				p := k
				if path != "" {
					p = path + "." + k
				}
				if seen[k]++; seen[k] == 2 {
					out = append(out, p)
				}
				if err := walk(p); err != nil {
					return err
				}
			}
		case json.Delim('['):
			for dec.More() {
				if err := walk(path + "[]"); err != nil {
					return err
				}
			}
		default:
			return nil
		}
		_, err = dec.Token() // the closing delimiter
		return err
	}
	_ = walk("") // body is valid JSON: an error here cannot happen, and would only mean fewer names
	return out
}

// checkJSONValue names what is wrong with raw as a value of the Go type t at field: null, or a JSON type t does
// not decode from. An object of strings is checked value by value, naming field.key.
func checkJSONValue(field string, t reflect.Type, raw json.RawMessage) []FieldError {
	if string(bytes.TrimSpace(raw)) == "null" {
		return []FieldError{{Field: field, Detail: "must be " + jsonKind(t) + ", not null"}}
	}
	if t.Kind() == reflect.Map && t.Key().Kind() == reflect.String {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return []FieldError{{Field: field, Detail: "must be " + jsonKind(t)}}
		}
		var errs []FieldError
		for k, v := range m {
			errs = append(errs, checkJSONValue(field+"."+k, t.Elem(), v)...)
		}
		return errs
	}
	if err := json.Unmarshal(raw, reflect.New(t).Interface()); err != nil {
		return []FieldError{{Field: field, Detail: "must be " + jsonKind(t)}}
	}
	return nil
}

// jsonFields maps the JSON names of t's exported fields to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out[name] = f.Type
		}
	}
	return out
}

// jsonKind names the JSON type a Go type decodes from.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
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
