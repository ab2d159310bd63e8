package component

import (
	"strconv"
	"strings"
	"time"
)

// ConfigReader reads typed values out of component metadata for a driver's
// one parse function. It matches key names case-insensitively (as Dapr does),
// applies the default when a key is absent or empty, and collects every
// problem so a user sees them all at once: call Err after the last read.
type ConfigReader struct {
	md   Metadata
	errs ConfigError
}

// NewConfigReader returns a reader over md.
func NewConfigReader(md Metadata) *ConfigReader { return &ConfigReader{md: md} }

func (r *ConfigReader) lookup(key string) (string, bool) {
	v, ok := r.md.Get(key)
	v = strings.TrimSpace(v)
	return v, ok && v != ""
}

// Required returns the value of key, recording a problem when it is missing.
func (r *ConfigReader) Required(key string) string {
	v, ok := r.lookup(key)
	if !ok {
		r.errs.Add(key, "is required")
	}
	return v
}

// String returns the value of key or def.
func (r *ConfigReader) String(key, def string) string {
	if v, ok := r.lookup(key); ok {
		return v
	}
	return def
}

// Bool returns key parsed as a boolean ("true", "false", "1", "0", …) or def.
func (r *ConfigReader) Bool(key string, def bool) bool {
	v, ok := r.lookup(key)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.errs.Add(key, "must be true or false, got "+strconv.Quote(v))
		return def
	}
	return b
}

// Int returns key parsed as a base-10 integer or def.
func (r *ConfigReader) Int(key string, def int) int {
	v, ok := r.lookup(key)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		r.errs.Add(key, "must be an integer, got "+strconv.Quote(v))
		return def
	}
	return n
}

// Duration returns key parsed as a Go duration ("5s", "250ms") or def. A bare
// integer is read in the unit given, as several Dapr components accept.
func (r *ConfigReader) Duration(key string, def, unit time.Duration) time.Duration {
	v, ok := r.lookup(key)
	if !ok {
		return def
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Duration(n) * unit
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		r.errs.Add(key, "must be a duration such as 5s, got "+strconv.Quote(v))
		return def
	}
	return d
}

// Fail records a problem with key found by the driver's own checks.
func (r *ConfigReader) Fail(key, problem string) { r.errs.Add(key, problem) }

// Err returns a *ConfigError listing every problem, or nil.
func (r *ConfigReader) Err() error {
	if len(r.errs.Problems) == 0 {
		return nil
	}
	errs := r.errs
	return &errs
}
