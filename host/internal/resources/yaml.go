package resources

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

const (
	kindComponent    = "Component"
	kindSubscription = "Subscription"

	apiV1Alpha1 = "dapr.io/v1alpha1"
	apiV2Alpha1 = "dapr.io/v2alpha1"
)

// chunk is one YAML document cut out of a file.
type chunk struct {
	line int // line of the file on which data starts, 1-based
	data []byte
}

// splitDocuments cuts a file at its document markers ("---" at the start of a
// line). yaml.v3 stops reading a stream at the first syntax error, so parsing
// each document on its own is what lets one malformed document leave the
// others loadable. YAML forbids "---" at column 0 inside a document, so the
// cut never lands inside one. The marker line stays with the document it
// opens, which keeps line numbers exact.
func splitDocuments(data []byte) []chunk {
	var chunks []chunk
	start, startLine := 0, 1
	line := 1
	for off := 0; off < len(data); {
		end := bytes.IndexByte(data[off:], '\n')
		next := len(data)
		if end >= 0 {
			next = off + end + 1
		}
		if off > start && isDocumentMarker(data[off:next]) {
			chunks = append(chunks, chunk{line: startLine, data: data[start:off]})
			start, startLine = off, line
		}
		off = next
		line++
	}
	return append(chunks, chunk{line: startLine, data: data[start:]})
}

func isDocumentMarker(line []byte) bool {
	if !bytes.HasPrefix(line, []byte("---")) {
		return false
	}
	return len(line) == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r' || line[3] == '\n'
}

// yamlLine pulls the line out of yaml.v3's "yaml: line N: problem" messages;
// the library offers no structured form.
var yamlLine = regexp.MustCompile(`(?s)^yaml: line (\d+): (.*)$`)

// syntaxErrorLine returns the line of data (1-based) that err, yaml.v3's
// complaint about data, is about, and the complaint without its prefix.
//
// yaml.v3 reports a parser error at the line before the construct it was in
// (often many lines above the mistake) and some errors at no line at all. An
// operator should be sent to the line to fix, so this looks for the shortest
// prefix of data, in whole lines, that fails with the same complaint: the line
// it ends on is where the mistake is, or where the unclosed construct it
// breaks begins. Prefixes that stop before the mistake parse, or fail with
// another complaint (an unclosed quote cut short), so "fails the same way"
// flips from false to true once in practice, and a binary search finds it in
// O(log lines) parses; where it does not, the search still lands on a line
// whose prefix fails this way.
func syntaxErrorLine(data []byte, err error) (line int, msg string) {
	line, msg = complaint(err)
	var ends []int // ends[i] is the offset just past line i+1
	for off := 0; off < len(data); {
		next := len(data)
		if i := bytes.IndexByte(data[off:], '\n'); i >= 0 {
			next = off + i + 1
		}
		ends = append(ends, next)
		off = next
	}
	fails := func(i int) bool {
		var node yaml.Node
		err := yaml.Unmarshal(data[:ends[i]], &node)
		if err == nil {
			return false
		}
		_, m := complaint(err)
		return m == msg
	}
	if i := sort.Search(len(ends), fails); i < len(ends) {
		return i + 1, msg
	}
	return line, msg // not reached: the whole of data fails this way
}

// complaint splits yaml.v3's "yaml: line N: problem" into N (1 without one)
// and the problem; the library offers no structured form.
func complaint(err error) (line int, msg string) {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		return max(line, 1), m[2]
	}
	return 1, strings.TrimPrefix(err.Error(), "yaml: ")
}

// document parses one chunk and hands a Component or Subscription to its
// parser; anything else is skipped silently.
func (l *loader) document(file string, c chunk) {
	var root yaml.Node
	if err := yaml.Unmarshal(c.data, &root); err != nil {
		line, msg := syntaxErrorLine(c.data, err)
		l.errs = append(l.errs, &Error{File: file, Line: c.line + line - 1, Err: fmt.Errorf("invalid YAML: %s", msg)})
		return
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return // empty document, or only comments
	}
	top := deref(root.Content[0])
	d := &doc{file: file, offset: c.line - 1, top: top}
	if isNull(top) {
		return // an empty document
	}
	if top.Kind != yaml.MappingNode {
		l.unacted(d, "", "") // not a resource
		return
	}
	kind, api := d.scalar(top, "kind"), d.scalar(top, "apiVersion")
	switch {
	case kind == kindComponent && api == apiV1Alpha1:
		d.kind = kindComponent
		l.component(d)
	case kind == kindSubscription && (api == apiV1Alpha1 || api == apiV2Alpha1):
		d.kind = kindSubscription
		l.subscription(d, api)
	case kind == kindResiliency && api == apiV1Alpha1:
		d.kind = kindResiliency
		l.resiliency(d)
	case kind == kindConfiguration && api == apiV1Alpha1:
		d.kind = kindConfiguration
		l.configurationDocument(d)
	default:
		l.unacted(d, kind, api)
	}
}

// flush hands the document's errors to l in line order (they are found in
// field order) and reports whether there were any.
func (l *loader) flush(d *doc) bool {
	slices.SortStableFunc(d.errs, func(a, b *Error) int { return a.Line - b.Line })
	for _, e := range d.errs {
		l.errs = append(l.errs, e)
	}
	return len(d.errs) > 0
}

// doc is one resource document being read, with the errors found in it.
type doc struct {
	file   string
	offset int // file line = offset + node line
	top    *yaml.Node
	kind   string
	name   string
	errs   []*Error
}

// line is n's line in the file, or the document's first line without n.
func (d *doc) line(n *yaml.Node) int {
	if n == nil || n.Line == 0 {
		n = d.top
	}
	return d.offset + n.Line
}

// fail records a problem with field, located at n.
func (d *doc) fail(n *yaml.Node, field string, format string, args ...any) {
	d.errs = append(d.errs, &Error{
		File: d.file, Line: d.line(n), Kind: d.kind, Name: d.name, Field: field,
		Err: fmt.Errorf(format, args...),
	})
}

// deref follows aliases to the node they name.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// field returns the key and value nodes of name in mapping m (nil, nil when m
// is not a mapping or lacks the key). Keys match case-insensitively, an exact
// match winning, as encoding/json does in Dapr. A null value counts as absent
// but its key is returned for locating errors.
func field(m *yaml.Node, name string) (key, val *yaml.Node) {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == name {
			key, val = m.Content[i], m.Content[i+1]
			break
		}
		if key == nil && strings.EqualFold(m.Content[i].Value, name) {
			key, val = m.Content[i], m.Content[i+1]
		}
	}
	val = deref(val)
	if isNull(val) {
		val = nil
	}
	return key, val
}

// scalar returns the text of scalar field name of m, "" when absent or not a
// scalar. For the lenient reads (kind, apiVersion) that decide whether a
// document is ours at all.
func (d *doc) scalar(m *yaml.Node, name string) string {
	_, v := field(m, name)
	if v == nil || v.Kind != yaml.ScalarNode {
		return ""
	}
	return v.Value
}

// str reads an optional string field; a non-scalar is an error.
func (d *doc) str(m *yaml.Node, name, path string) string {
	k, v := field(m, name)
	if v == nil {
		return ""
	}
	if v.Kind != yaml.ScalarNode {
		d.fail(k, path, "must be a string, not %s", describe(v))
		return ""
	}
	return v.Value
}

// required reads a string field that must be present and non-empty; where
// locates the error when the field is missing altogether.
func (d *doc) required(m *yaml.Node, name, path string, where *yaml.Node) string {
	k, v := field(m, name)
	if k == nil {
		k = where
	}
	if v == nil || (v.Kind == yaml.ScalarNode && strings.TrimSpace(v.Value) == "") {
		d.fail(k, path, "is required")
		return ""
	}
	if v.Kind != yaml.ScalarNode {
		d.fail(k, path, "must be a string, not %s", describe(v))
		return ""
	}
	return v.Value
}

// mapping reads an optional mapping field; a non-mapping is an error.
func (d *doc) mapping(m *yaml.Node, name, path string) (key, val *yaml.Node) {
	k, v := field(m, name)
	if v != nil && v.Kind != yaml.MappingNode {
		d.fail(k, path, "must be a mapping, not %s", describe(v))
		return k, nil
	}
	return k, v
}

// boolean reads an optional bool field.
func (d *doc) boolean(m *yaml.Node, name, path string) bool {
	k, v := field(m, name)
	if v == nil {
		return false
	}
	var b bool
	if v.Kind != yaml.ScalarNode || v.Decode(&b) != nil {
		d.fail(k, path, "must be true or false, not %s", describe(v))
		return false
	}
	return b
}

// count reads an optional non-negative integer field.
func (d *doc) count(m *yaml.Node, name, path string) int {
	k, v := field(m, name)
	if v == nil {
		return 0
	}
	var n int
	if v.Kind != yaml.ScalarNode || v.Decode(&n) != nil || n < 0 {
		d.fail(k, path, "must be a non-negative integer, not %s", describe(v))
		return 0
	}
	return n
}

// stringMap reads an optional mapping of string to scalar, such as
// metadata.annotations.
func (d *doc) stringMap(m *yaml.Node, name, path string) map[string]string {
	out := map[string]string{}
	_, v := d.mapping(m, name, path)
	if v == nil {
		return out
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], deref(v.Content[i+1])
		switch {
		case isNull(val):
			out[k.Value] = ""
		case val.Kind == yaml.ScalarNode:
			out[k.Value] = val.Value
		default:
			d.fail(k, path+"."+k.Value, "must be a string, not %s", describe(val))
		}
	}
	return out
}

// stringList reads an optional list of strings.
func (d *doc) stringList(m *yaml.Node, name, path string) []string {
	k, v := field(m, name)
	if v == nil || isNull(v) {
		return nil
	}
	if v.Kind != yaml.SequenceNode {
		d.fail(k, path, "must be a list of strings, not %s", describe(v))
		return nil
	}
	var out []string
	for i, item := range v.Content {
		item = deref(item)
		if item.Kind != yaml.ScalarNode {
			d.fail(item, fmt.Sprintf("%s[%d]", path, i), "must be a string, not %s", describe(item))
			continue
		}
		out = append(out, item.Value)
	}
	return out
}

// scopes reads the top-level scopes list.
func (d *doc) scopes() ([]string, bool) {
	k, v := field(d.top, "scopes")
	if v == nil {
		return nil, true
	}
	if v.Kind != yaml.SequenceNode {
		d.fail(k, "scopes", "must be a list of app IDs, not %s", describe(v))
		return nil, false
	}
	var out []string
	for i, item := range v.Content {
		item = deref(item)
		if item.Kind != yaml.ScalarNode {
			d.fail(item, fmt.Sprintf("scopes[%d]", i), "must be an app ID, not %s", describe(item))
			return nil, false
		}
		if s := strings.TrimSpace(item.Value); s != "" {
			out = append(out, s)
		}
	}
	return out, true
}

// metadataName reads metadata.name leniently, only to name the resource in
// messages before it is checked properly.
func (d *doc) metadataName() string {
	_, md := field(d.top, "metadata")
	return d.scalar(md, "name")
}

// describe names a node's shape for messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "an unexpected node"
}

// jsonValue renders a map or list value as compact JSON, the form Dapr hands
// components for structured metadata. Keys come out sorted, like Dapr's
// YAML → JSON conversion.
func jsonValue(n *yaml.Node) (string, error) {
	timestampsAsText(n, map[*yaml.Node]bool{})
	var v any
	// Decode (rather than a walk of our own) expands aliases under yaml.v3's
	// guard against alias bombs, and applies merge keys.
	if err := n.Decode(&v); err != nil {
		return "", err
	}
	v, err := jsonable(v)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // values are not headed for HTML
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// timestampsAsText retags the timestamps under n as strings, so a date in a
// structured value reaches the component as written ("2024-01-01") rather
// than reformatted through time.Time, as Dapr passes it. It changes n in
// place: the tree belongs to the document being read and is not used after.
func timestampsAsText(n *yaml.Node, seen map[*yaml.Node]bool) {
	if n == nil || seen[n] {
		return
	}
	seen[n] = true
	if n.Kind == yaml.AliasNode {
		timestampsAsText(n.Alias, seen)
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!timestamp" {
		n.Tag = "!!str"
	}
	for _, c := range n.Content {
		timestampsAsText(c, seen)
	}
}

// jsonable turns yaml.v3's map[any]any (keys that are not all strings) into
// map[string]any, which encoding/json accepts.
func jsonable(v any) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			e, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			t[k] = e
		}
		return t, nil
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			e, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			m[fmt.Sprint(k)] = e
		}
		return m, nil
	case []any:
		for i, e := range t {
			e, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			t[i] = e
		}
		return t, nil
	case float64:
		if math.IsNaN(t) || math.IsInf(t, 0) {
			return nil, errors.New("NaN and infinity have no JSON form")
		}
	}
	return v, nil
}
