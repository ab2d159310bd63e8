package guest

import (
	"strconv"
	"strings"
	"time"
)

// Metadata is what wapr_init hands a component: its name, the type it is
// loaded as, and the spec.metadata of its Component YAML (secret
// references already resolved by the host).
//
// Keys are matched case-insensitively by every method, as Dapr does; an
// empty value counts as unset. The zero value is an empty metadata.
type Metadata struct {
	Name       string            // metadata.name of the Component
	Type       string            // spec.type, one of the descriptor's Types
	Properties map[string]string // spec.metadata
}

// Lookup returns the value of key and whether it is set (present and not
// empty). An exact match wins over a case-insensitive one.
func (m Metadata) Lookup(key string) (string, bool) {
	if v, ok := m.Properties[key]; ok {
		return v, v != ""
	}
	for k, v := range m.Properties {
		if strings.EqualFold(k, key) {
			return v, v != ""
		}
	}
	return "", false
}

// Get returns the value of key, or "" when it is not set.
func (m Metadata) Get(key string) string {
	v, _ := m.Lookup(key)
	return v
}

// String returns the value of key, or def when it is not set.
func (m Metadata) String(key, def string) string {
	if v, ok := m.Lookup(key); ok {
		return v
	}
	return def
}

// Bool returns key as a boolean (true/false, 1/0, t/f, yes/no, y/n, on/off,
// any case), or def when it is not set. A malformed value is an
// InvalidArgument error naming the key.
func (m Metadata) Bool(key string, def bool) (bool, error) {
	v, ok := m.Lookup(key)
	if !ok {
		return def, nil
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "t", "true", "y", "yes", "on":
		return true, nil
	case "0", "f", "false", "n", "no", "off":
		return false, nil
	}
	return def, badValue(key, v, "must be true or false")
}

// Int returns key as a decimal integer, or def when it is not set.
func (m Metadata) Int(key string, def int) (int, error) {
	v, ok := m.Lookup(key)
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return def, badValue(key, v, "must be an integer")
	}
	return n, nil
}

// Duration returns key as a Go duration ("1.5s", "300ms") or, for a bare
// number, that many units (Dapr mixes both spellings), or def when it is
// not set.
func (m Metadata) Duration(key string, def, unit time.Duration) (time.Duration, error) {
	v, ok := m.Lookup(key)
	if !ok {
		return def, nil
	}
	v = strings.TrimSpace(v)
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Duration(n) * unit, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return def, badValue(key, v, `must be a duration such as "5s" or a number of `+unitName(unit))
	}
	return d, nil
}

func unitName(unit time.Duration) string {
	switch unit {
	case time.Millisecond:
		return "milliseconds"
	case time.Second:
		return "seconds"
	}
	return unit.String() + " units"
}

func badValue(key, v, problem string) *Error {
	return &Error{Status: invalidArgument, Message: "metadata " + key + " " + problem + ", got " + strconv.Quote(v)}
}
