// Package component is the contract between the wapr host and every component,
// whether a native builtin driver or a sandboxed WebAssembly module.
//
// It imports only the standard library. The per-kind interfaces live in the
// sub-packages state, pubsub, bindings, secretstores, configuration, lock and
// nameresolution; this package holds what they share: the lifecycle,
// metadata, features and the error values the HTTP edge maps to Dapr's
// status codes.
package component

import (
	"context"
	"errors"
	"strings"
)

// Metadata is what a component receives at Init: its name and type from the
// YAML and its spec.metadata properties as strings.
//
// Properties keeps the keys as written in the YAML; use Get to look them up the
// way Dapr does, case-insensitively.
type Metadata struct {
	Name       string
	Type       string
	Version    string
	Properties map[string]string
}

// Get returns the property named key, matching names case-insensitively as Dapr
// does. An exact match wins over a case-folded one.
func (m Metadata) Get(key string) (string, bool) {
	if v, ok := m.Properties[key]; ok {
		return v, true
	}
	for k, v := range m.Properties {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return "", false
}

// Lifecycle is the life every component shares: construct without side
// effects, Init connects, Close releases. The host calls Close exactly once,
// also after a failed Init, with a context that carries the deadline.
type Lifecycle interface {
	Init(ctx context.Context, md Metadata) error
	Close(ctx context.Context) error
}

// Feature names an optional capability a component declares. Declared features
// must work and undeclared ones must be refused cleanly; the conformance suite
// checks both ways. The string values are Dapr's, so they appear unchanged in
// the metadata API.
type Feature string

// HasFeature reports whether f is in fs.
func HasFeature(fs []Feature, f Feature) bool {
	for _, x := range fs {
		if x == f {
			return true
		}
	}
	return false
}

// Errors components return, wrapped with %w, for the host to branch on.
var (
	// ErrNotFound: the key, object or resource does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInvalidArgument: the request is malformed for this component (a bad
	// metadata value, a missing key); it maps to 400.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrNotSupported: the component does not offer the operation or option.
	ErrNotSupported = errors.New("not supported")
	// ErrUnavailable: the backend cannot be reached right now; retrying may help.
	ErrUnavailable = errors.New("backend unavailable")
	// ErrClosed: the component was closed.
	ErrClosed = errors.New("component closed")
)

// ConfigError reports every problem found in a component's metadata at once.
// Each entry names the field it is about.
type ConfigError struct {
	Problems []FieldProblem
}

// FieldProblem is one bad or missing metadata field.
type FieldProblem struct {
	Field   string
	Problem string
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString("metadata field ")
		b.WriteString(p.Field)
		b.WriteString(": ")
		b.WriteString(p.Problem)
	}
	return b.String()
}

// Unwrap lets errors.Is(err, ErrInvalidArgument) hold for configuration errors.
func (e *ConfigError) Unwrap() error { return ErrInvalidArgument }

// Add records a problem with field.
func (e *ConfigError) Add(field, problem string) {
	e.Problems = append(e.Problems, FieldProblem{Field: field, Problem: problem})
}

// Err returns e when it holds problems, nil otherwise.
func (e *ConfigError) Err() error {
	if len(e.Problems) == 0 {
		return nil
	}
	return e
}
