// Package file is the native driver for Dapr's secretstores.local.file: a
// secret store read from a local JSON file, for development.
//
// # Secrets
//
// Init reads the file named by secretsFile once; later changes to the file
// are not seen. The file must hold one JSON object.
//
// Without multiValued every scalar in the file is a secret of its own, named
// by its path: the keys of nested objects, and the indices of arrays, joined
// with nestedSeparator. {"db":{"user":"u","hosts":["a","b"]}} gives the
// secrets db:user, db:hosts:0 and db:hosts:1. GetSecret returns one pair,
// {name: value}.
//
// With multiValued each top-level key is a secret. An object becomes the
// secret's key/value pairs, deeper levels flattened as above; an array
// likewise, keyed by index; a scalar becomes {name: value}. The store then
// declares secretstores.FeatureMultipleKeyValuesPerSecret, and only then.
//
// Strings are returned as they are, numbers as written in the file, booleans
// as true or false, and null as the empty string. Two values that end up
// under one name (a key "a:b" next to {"a":{"b":…}}) fail Init, naming them.
//
// # Errors
//
// A missing secretsFile, a file that cannot be read or is not a JSON object
// fail Init with a *component.ConfigError about secretsFile that names the
// file. A secret that does not exist is an error wrapping
// component.ErrNotFound that names it.
//
// # Concurrency and ownership
//
// A Store is safe for concurrent use; the secrets never change after Init.
// GetSecret and BulkGetSecret return fresh maps the caller owns. No
// operation does I/O after Init, so contexts are not consulted.
package file

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/secretstores"
)

var _ secretstores.Store = (*Store)(nil)

// typeName is the component type this driver serves.
const typeName = "secretstores.local.file"

// Store is a secret store read from a JSON file. Create it with New and call
// Init before use.
type Store struct {
	// st is published by Init and replaced by Close; operations load it
	// without a lock. nil: Init has not succeeded.
	st atomic.Pointer[state]

	mu      sync.Mutex // serialises Init and Close
	started bool
	closed  bool
}

// state is what operations read. It is never modified once published.
type state struct {
	prefix      string // `secretstores.local.file "name"`, the start of every error
	secrets     map[string]map[string]string
	multiValued bool
	closed      bool
}

// New returns a store with no secrets. It has no side effects; Init reads
// the file.
func New() *Store { return &Store{} }

// Init parses the metadata and reads the secrets file. It may be called once
// successfully; a call after Close fails with component.ErrClosed.
func (s *Store) Init(_ context.Context, md component.Metadata) error {
	prefix := typeName
	if md.Name != "" {
		prefix += " " + strconv.Quote(md.Name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("%s: %w", prefix, component.ErrClosed)
	}
	if s.started {
		return fmt.Errorf("%s: Init called twice", prefix)
	}
	cfg, err := parseConfig(md)
	if err != nil {
		return fmt.Errorf("%s: %w", prefix, err)
	}
	s.started = true
	s.st.Store(&state{prefix: prefix, secrets: cfg.secrets, multiValued: cfg.multiValued})
	return nil
}

// Close drops the secrets; later operations fail with an error wrapping
// component.ErrClosed. Calling it again, or before Init, does nothing more.
func (s *Store) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	closed := &state{prefix: typeName, closed: true}
	if old := s.st.Load(); old != nil {
		closed.prefix, closed.multiValued = old.prefix, old.multiValued
	}
	s.st.Store(closed)
	return nil
}

// Features reports MULTIPLE_KEY_VALUES_PER_SECRET when multiValued is set,
// nothing otherwise. The slice is the caller's.
func (s *Store) Features() []component.Feature {
	if st := s.st.Load(); st != nil && st.multiValued {
		return []component.Feature{secretstores.FeatureMultipleKeyValuesPerSecret}
	}
	return []component.Feature{}
}

// GetSecret returns a copy of the secret's key/value pairs, or an error
// wrapping component.ErrNotFound. Request metadata is ignored.
func (s *Store) GetSecret(_ context.Context, req *secretstores.GetRequest) (map[string]string, error) {
	st, err := s.ready()
	if err != nil {
		return nil, err
	}
	secret, ok := st.secrets[req.Name]
	if !ok {
		return nil, fmt.Errorf("%s: secret %s %w", st.prefix, strconv.Quote(req.Name), component.ErrNotFound)
	}
	return maps.Clone(secret), nil
}

// BulkGetSecret returns a copy of every secret. Request metadata is ignored.
func (s *Store) BulkGetSecret(_ context.Context, _ *secretstores.BulkGetRequest) (map[string]map[string]string, error) {
	st, err := s.ready()
	if err != nil {
		return nil, err
	}
	out := make(map[string]map[string]string, len(st.secrets))
	for name, secret := range st.secrets {
		out[name] = maps.Clone(secret)
	}
	return out, nil
}

var errNotInitialised = errors.New(typeName + ": used before Init")

func (s *Store) ready() (*state, error) {
	st := s.st.Load()
	switch {
	case st == nil:
		return nil, errNotInitialised
	case st.closed:
		return nil, fmt.Errorf("%s: %w", st.prefix, component.ErrClosed)
	}
	return st, nil
}
