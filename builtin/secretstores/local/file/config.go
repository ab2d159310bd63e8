package file

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/wapr-dev/wapr/host/component"
)

// Metadata keys, as Dapr spells them; matched case-insensitively.
const (
	keySecretsFile     = "secretsFile"
	keyNestedSeparator = "nestedSeparator"
	keyMultiValued     = "multiValued"
)

const defaultNestedSeparator = ":"

// config is the parsed metadata together with the secrets read from the
// file. It is immutable after parseConfig.
type config struct {
	secretsFile     string
	nestedSeparator string
	multiValued     bool
	// secrets maps a secret's name to its key/value pairs; read-only.
	secrets map[string]map[string]string
}

// parseConfig reads every metadata key, then reads and flattens the secrets
// file. Every problem, including an unreadable or malformed file, is
// reported at once in a *component.ConfigError; file problems are reported
// against secretsFile.
func parseConfig(md component.Metadata) (config, error) {
	r := component.NewConfigReader(md)
	c := config{
		secretsFile:     r.Required(keySecretsFile),
		nestedSeparator: r.String(keyNestedSeparator, defaultNestedSeparator),
		multiValued:     r.Bool(keyMultiValued, false),
	}
	if c.secretsFile != "" {
		doc, problem := readSecretsFile(c.secretsFile)
		if problem == "" {
			c.secrets, problem = buildSecrets(doc, c.nestedSeparator, c.multiValued)
		}
		if problem != "" {
			r.Fail(keySecretsFile, problem)
		}
	}
	if err := r.Err(); err != nil {
		return config{}, err
	}
	return c, nil
}

// readSecretsFile reads path (relative to the working directory when not
// absolute, as in Dapr) and decodes the JSON object it must hold. Numbers
// are kept as written (json.Number). It returns a problem description
// naming the file rather than an error, for the caller to record.
func readSecretsFile(path string) (map[string]any, string) {
	shown := strconv.Quote(path)
	if !filepath.IsAbs(path) {
		if abs, err := filepath.Abs(path); err == nil {
			shown += " (" + abs + ")"
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, "cannot read " + shown + ": " + err.Error()
	}

	// Unmarshal checks the whole file, trailing data included, and reports
	// where a syntax error is; the decoder then keeps numbers as written.
	var raw json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, shown + " is not valid JSON: " + describeJSONError(b, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, shown + " is not valid JSON: " + err.Error()
	}
	switch v := v.(type) {
	case map[string]any:
		return v, ""
	case nil:
		// A file holding just null: no secrets, as in Dapr.
		return map[string]any{}, ""
	default:
		return nil, shown + " must hold a JSON object of secrets, not " + jsonKind(v)
	}
}

// describeJSONError adds the line and column of a syntax error.
func describeJSONError(b []byte, err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return se.Error() + " at " + position(b, se.Offset)
	}
	return err.Error()
}

// position turns a byte offset into "line L, column C" (both from 1).
func position(b []byte, offset int64) string {
	offset = min(max(offset, 0), int64(len(b)))
	before := b[:offset]
	line := bytes.Count(before, []byte{'\n'}) + 1
	col := len(before) - (bytes.LastIndexByte(before, '\n') + 1)
	// The decoder's offset is just past the offending byte.
	if col > 0 {
		col--
	}
	return fmt.Sprintf("line %d, column %d", line, col+1)
}

func jsonKind(v any) string {
	switch v.(type) {
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// buildSecrets turns the file's object into secrets (see the package
// comment). It returns a problem when two values end up under one name.
func buildSecrets(doc map[string]any, sep string, multiValued bool) (map[string]map[string]string, string) {
	secrets := make(map[string]map[string]string, len(doc))
	var dups []string
	if !multiValued {
		f := flattener{sep: sep, out: make(map[string]string, len(doc))}
		f.members("", doc)
		for name, value := range f.out {
			secrets[name] = map[string]string{name: value}
		}
		dups = f.dups
	} else {
		for _, name := range slices.Sorted(maps.Keys(doc)) {
			f := flattener{sep: sep, out: map[string]string{}}
			switch v := doc[name].(type) {
			case map[string]any:
				f.members("", v)
			case []any:
				f.elements("", v)
			default:
				f.out[name] = scalarText(v)
			}
			secrets[name] = f.out
			for _, d := range f.dups {
				dups = append(dups, strconv.Quote(name)+" key "+d)
			}
		}
	}
	if len(dups) > 0 {
		return nil, "names defined twice once nested keys are joined with " + strconv.Quote(sep) + ": " + strings.Join(dups, ", ")
	}
	return secrets, ""
}

// flattener joins the keys of nested objects and the indices of arrays with
// sep, collecting the scalar leaves in out. Keys are visited in sorted order
// so the reported duplicates do not depend on map iteration.
type flattener struct {
	sep  string
	out  map[string]string
	dups []string // quoted names set twice
}

func (f *flattener) value(path string, v any) {
	switch v := v.(type) {
	case map[string]any:
		f.members(path+f.sep, v)
	case []any:
		f.elements(path+f.sep, v)
	default:
		if _, ok := f.out[path]; ok {
			f.dups = append(f.dups, strconv.Quote(path))
			return
		}
		f.out[path] = scalarText(v)
	}
}

func (f *flattener) members(prefix string, m map[string]any) {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		f.value(prefix+k, m[k])
	}
}

func (f *flattener) elements(prefix string, a []any) {
	for i, x := range a {
		f.value(prefix+strconv.Itoa(i), x)
	}
}

// scalarText renders a JSON scalar: a string as it is, a number as written
// in the file, a boolean as true or false, null as the empty string.
func scalarText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	default: // nil; objects and arrays never get here
		return ""
	}
}
