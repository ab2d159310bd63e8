// Package nrconfig reads a name resolver's configuration: the
// spec.nameResolution.configuration of a Dapr Configuration resource, which
// the host hands over as decoded YAML (nested map[string]any, []any, string,
// bool, int and float64), not as the flat strings of component metadata.
//
// It is the map[string]any counterpart of component.ConfigReader, for each
// resolver's one parse function: key names match case-insensitively, a
// missing, null or empty value means the default, and every problem is
// collected so Err reports them all at once as a *component.ConfigError.
// Unknown keys are ignored, as Dapr ignores them.
package nrconfig

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/wapr-dev/wapr/host/component"
)

// Reader reads typed values out of one configuration map. It is not safe for
// concurrent use; it lives for one parse.
type Reader struct {
	m    map[string]any
	errs component.ConfigError
}

// NewReader returns a reader over m, which may be nil.
func NewReader(m map[string]any) *Reader { return &Reader{m: m} }

// Lookup returns m's value for key, matching names case-insensitively. An
// exact match wins over a case-folded one.
func Lookup(m map[string]any, key string) (any, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}

// Value returns the value of key; ok is false when the key is absent, null or
// a blank string.
func (r *Reader) Value(key string) (v any, ok bool) {
	v, ok = Lookup(r.m, key)
	if !ok || v == nil {
		return nil, false
	}
	if s, isString := v.(string); isString && strings.TrimSpace(s) == "" {
		return nil, false
	}
	return v, true
}

// String returns the value of key, trimmed, or def. A number or boolean is
// refused rather than converted: a YAML scalar that is not a string is
// usually a mistake for a string-valued key.
func (r *Reader) String(key, def string) string {
	v, ok := r.Value(key)
	if !ok {
		return def
	}
	s, isString := v.(string)
	if !isString {
		r.Fail(key, "must be a string, got "+Describe(v))
		return def
	}
	return strings.TrimSpace(s)
}

// Int returns the value of key as an integer or def. It accepts a YAML
// integer, a whole float64 and a decimal string ("8080").
func (r *Reader) Int(key string, def int) int {
	v, ok := r.Value(key)
	if !ok {
		return def
	}
	switch x := v.(type) {
	case int:
		return x
	case int64:
		return int(x)
	case float64:
		if x == float64(int(x)) {
			return int(x)
		}
	case string:
		if n, err := strconv.Atoi(strings.TrimSpace(x)); err == nil {
			return n
		}
	}
	r.Fail(key, "must be an integer, got "+Describe(v))
	return def
}

// Bool returns the value of key as a boolean or def. It accepts a YAML
// boolean and the strings strconv.ParseBool accepts ("true", "0", …).
func (r *Reader) Bool(key string, def bool) bool {
	v, ok := r.Value(key)
	if !ok {
		return def
	}
	switch x := v.(type) {
	case bool:
		return x
	case string:
		if b, err := strconv.ParseBool(strings.TrimSpace(x)); err == nil {
			return b
		}
	}
	r.Fail(key, "must be true or false, got "+Describe(v))
	return def
}

// Duration returns the value of key parsed as a Go duration ("500ms", "2s")
// or def. A bare number is refused: its unit would be a guess.
func (r *Reader) Duration(key string, def time.Duration) time.Duration {
	v, ok := r.Value(key)
	if !ok {
		return def
	}
	if s, isString := v.(string); isString {
		if d, err := time.ParseDuration(strings.TrimSpace(s)); err == nil {
			return d
		}
	}
	r.Fail(key, "must be a duration such as 500ms or 2s, got "+Describe(v))
	return def
}

// Fail records a problem with field, which names the key (or a path inside
// it, such as "apps.b[1]").
func (r *Reader) Fail(field, problem string) { r.errs.Add(field, problem) }

// Err returns a *component.ConfigError listing every problem, or nil.
func (r *Reader) Err() error {
	if len(r.errs.Problems) == 0 {
		return nil
	}
	errs := r.errs
	return &errs
}

// Describe renders a decoded YAML value for an error message: strings quoted,
// maps and lists by kind only so that a message never grows with the input.
func Describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(x)
	case map[string]any:
		return "a map"
	case []any:
		return "a list"
	case bool, int, int64, float64:
		return fmt.Sprint(x)
	default:
		return fmt.Sprintf("a %T", x)
	}
}

// AddressProblem checks that addr is "host:port" as a resolver returns it: a
// DNS name or IP (IPv6 in brackets) and a decimal port in 1..65535. It
// returns what is wrong, or "" when addr is fine.
func AddressProblem(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "must be host:port, got " + strconv.Quote(addr)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return "must have a port in 1..65535, got " + strconv.Quote(addr)
	}
	if host == "" {
		return "must name a host, got " + strconv.Quote(addr)
	}
	if strings.Contains(host, ":") { // only an IPv6 literal may
		h, _, _ := strings.Cut(host, "%") // a link-local zone
		if net.ParseIP(h) == nil {
			return "must have a valid IPv6 address, got " + strconv.Quote(addr)
		}
		return ""
	}
	for _, c := range host {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return "must have a host name of letters, digits, '-', '_' and '.', got " + strconv.Quote(addr)
		}
	}
	return ""
}

// LabelProblem checks an app id or namespace that a resolver puts into a DNS
// name as one label: 1..63 bytes of letters, digits, '-' and '_'. Without
// the check an id such as "a.b" would silently name something else. It
// returns what is wrong, or "" when s is fine.
func LabelProblem(s string) string {
	switch {
	case s == "":
		return "is empty"
	case len(s) > 63:
		return "is longer than a DNS label (63 bytes)"
	case strings.ContainsFunc(s, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_')
	}):
		return "must be letters, digits, '-' and '_' only"
	}
	return ""
}
