package transferapitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/connectflow/connectflow/transferapi"
)

// Spec is the transfer API's OpenAPI document, able to check a JSON value against any of its schemas.
type Spec struct {
	Doc      map[string]any
	compiler *jsonschema.Compiler
	mu       sync.Mutex
	compiled map[string]*jsonschema.Schema
}

const specURL = "https://connectflow.invalid/openapi.json"

// LoadSpec parses transferapi.OpenAPI.
func LoadSpec() (*Spec, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(transferapi.OpenAPI))
	if err != nil {
		return nil, fmt.Errorf("openapi.json: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020) // OpenAPI 3.1's schema dialect
	c.AssertFormat()
	if err := c.AddResource(specURL, doc); err != nil {
		return nil, err
	}
	m, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("openapi.json: not an object")
	}
	return &Spec{Doc: m, compiler: c, compiled: map[string]*jsonschema.Schema{}}, nil
}

// Validate checks value (already decoded with encoding/json, or raw JSON bytes) against the schema at the JSON
// pointer ptr of the document, e.g. "/components/schemas/StartRequest".
func (s *Spec) Validate(ptr string, value any) error {
	if raw, ok := value.([]byte); ok {
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			return fmt.Errorf("not JSON: %w", err)
		}
		value = v
	} else {
		// Round-trip through JSON so numbers are json.Number, as the validator expects.
		b, err := json.Marshal(value)
		if err != nil {
			return err
		}
		if value, err = jsonschema.UnmarshalJSON(bytes.NewReader(b)); err != nil {
			return err
		}
	}
	s.mu.Lock()
	sch, ok := s.compiled[ptr]
	if !ok {
		var err error
		if sch, err = s.compiler.Compile(specURL + "#" + ptr); err != nil {
			s.mu.Unlock()
			return fmt.Errorf("schema %s: %w", ptr, err)
		}
		s.compiled[ptr] = sch
	}
	s.mu.Unlock()
	return sch.Validate(value)
}

// Operations lists "METHOD /path" of every documented operation, OpenAPI path syntax, sorted.
func (s *Spec) Operations() []string {
	var out []string
	paths, _ := s.Doc["paths"].(map[string]any)
	for path, item := range paths {
		ops, _ := item.(map[string]any)
		for method := range ops {
			switch method {
			case "get", "post", "put", "patch", "delete", "head", "options":
				out = append(out, strings.ToUpper(method)+" "+path)
			}
		}
	}
	sort.Strings(out)
	return out
}

// CheckResponse checks an answer of the API against the document: the operation documents status with the
// answer's media type, and the body validates against that schema. path is the OpenAPI path (with {params}).
func (s *Spec) CheckResponse(method, path string, status int, contentType string, body []byte) error {
	op, ok := s.lookup("/paths", path, strings.ToLower(method))
	if !ok {
		return fmt.Errorf("%s %s is not documented", method, path)
	}
	responses, _ := op.(map[string]any)["responses"].(map[string]any)
	r, ok := responses[strconv.Itoa(status)]
	if !ok {
		return fmt.Errorf("%s %s: status %d is not documented", method, path, status)
	}
	rm := r.(map[string]any)
	ptr := "/paths/" + escape(path) + "/" + strings.ToLower(method) + "/responses/" + strconv.Itoa(status)
	if ref, ok := rm["$ref"].(string); ok {
		ptr = strings.TrimPrefix(ref, "#")
		rm, _ = s.resolve(ptr).(map[string]any)
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Errorf("%s %s %d: Content-Type %q: %w", method, path, status, contentType, err)
	}
	content, _ := rm["content"].(map[string]any)
	if _, ok := content[mt]; !ok {
		return fmt.Errorf("%s %s %d: media type %s is not documented", method, path, status, mt)
	}
	if mt != "application/json" && mt != transferapi.ProblemContentType {
		return nil
	}
	if err := s.Validate(ptr+"/content/"+escape(mt)+"/schema", body); err != nil {
		return fmt.Errorf("%s %s %d: %w\nbody: %s", method, path, status, err, body)
	}
	return nil
}

func (s *Spec) lookup(prefix, path, method string) (any, bool) {
	v := s.resolve(prefix + "/" + escape(path) + "/" + method)
	return v, v != nil
}

// resolve reads the value at a JSON pointer of the document, or nil.
func (s *Spec) resolve(ptr string) any {
	var cur any = s.Doc
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		if cur, ok = m[tok]; !ok {
			return nil
		}
	}
	return cur
}

func escape(tok string) string {
	return strings.ReplaceAll(strings.ReplaceAll(tok, "~", "~0"), "/", "~1")
}
