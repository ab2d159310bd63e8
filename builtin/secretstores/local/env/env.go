// Package env is the native driver for Dapr's secretstores.local.env: the
// sidecar's environment variables served as secrets, for development.
//
// # Secrets
//
// Each visible variable is a secret with one pair, {name: value}. With the
// metadata key prefix set, only variables whose name starts with it are
// visible and the prefix is stripped from their names: with prefix MYAPP_,
// the secret DB_PASSWORD is the variable MYAPP_DB_PASSWORD. As in Dapr the
// prefix (like the variable names) is matched case-sensitively, except on
// Windows where both are case-insensitive.
//
// Variables that belong to the sidecar are never visible, whatever the
// prefix: APP_API_TOKEN and every variable whose name starts with DAPR_,
// both compared ignoring case on the full variable name (Dapr's rule).
//
// GetSecret follows Dapr 1.18: it never fails for a name that is not set (or
// not visible); it returns the name with an empty value. BulkGetSecret
// returns every visible variable, including those set to the empty string.
//
// The environment is read at every call, not captured at Init.
//
// # Concurrency and ownership
//
// A Store is safe for concurrent use. The maps it returns are fresh and
// belong to the caller. No operation blocks, so contexts are not consulted.
package env

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/secretstores"
)

var _ secretstores.Store = (*Store)(nil)

// typeName is the component type this driver serves.
const typeName = "secretstores.local.env"

const keyPrefix = "prefix"

// foldNames is whether variable names are case-insensitive, as on Windows.
var foldNames = runtime.GOOS == "windows"

// Store serves environment variables as secrets. Create it with New and
// call Init before use.
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
	errPrefix string // `secretstores.local.env "name"`, the start of every error
	prefix    string // the prefix metadata; "" for none
	closed    bool
}

// New returns a store. It has no side effects.
func New() *Store { return &Store{} }

// Init reads the metadata. It may be called once successfully; a call after
// Close fails with component.ErrClosed.
func (s *Store) Init(_ context.Context, md component.Metadata) error {
	errPrefix := typeName
	if md.Name != "" {
		errPrefix += " " + strconv.Quote(md.Name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("%s: %w", errPrefix, component.ErrClosed)
	}
	if s.started {
		return fmt.Errorf("%s: Init called twice", errPrefix)
	}
	r := component.NewConfigReader(md)
	prefix := r.String(keyPrefix, "")
	if err := r.Err(); err != nil {
		return fmt.Errorf("%s: %w", errPrefix, err)
	}
	s.started = true
	s.st.Store(&state{errPrefix: errPrefix, prefix: prefix})
	return nil
}

// Close makes later operations fail with an error wrapping
// component.ErrClosed. Calling it again, or before Init, does nothing more.
func (s *Store) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	closed := &state{errPrefix: typeName, closed: true}
	if old := s.st.Load(); old != nil {
		closed.errPrefix = old.errPrefix
	}
	s.st.Store(closed)
	return nil
}

// Features reports none: each secret holds one pair. The slice is the
// caller's.
func (s *Store) Features() []component.Feature { return []component.Feature{} }

// GetSecret returns {req.Name: value} of the variable prefix+req.Name. A
// variable that is not set, or that the store never exposes, gives the
// empty value and no error, as in Dapr. Request metadata is ignored.
func (s *Store) GetSecret(_ context.Context, req *secretstores.GetRequest) (map[string]string, error) {
	st, err := s.ready()
	if err != nil {
		return nil, err
	}
	var value string
	if name := st.prefix + req.Name; exposed(name) {
		value = os.Getenv(name)
	}
	return map[string]string{req.Name: value}, nil
}

// BulkGetSecret returns every visible variable, by name without the prefix.
// Request metadata is ignored.
func (s *Store) BulkGetSecret(_ context.Context, _ *secretstores.BulkGetRequest) (map[string]map[string]string, error) {
	st, err := s.ready()
	if err != nil {
		return nil, err
	}
	environ := os.Environ()
	out := make(map[string]map[string]string, len(environ))
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		secret, ok := stripPrefix(name, st.prefix, foldNames)
		// An empty name is Windows' per-drive "=C:=C:\dir" entries.
		if !ok || secret == "" || !exposed(name) {
			continue
		}
		out[secret] = map[string]string{secret: value}
	}
	return out, nil
}

// stripPrefix returns name without prefix and whether name is longer than
// prefix and starts with it, ignoring case when fold is set. A variable
// named just the prefix is not visible (as in Dapr).
func stripPrefix(name, prefix string, fold bool) (string, bool) {
	if prefix == "" {
		return name, true
	}
	if len(name) <= len(prefix) {
		return "", false
	}
	head := name[:len(prefix)]
	if head != prefix && !(fold && strings.ToUpper(head) == strings.ToUpper(prefix)) {
		return "", false
	}
	return name[len(prefix):], true
}

// exposed reports whether the variable name may be served: never
// APP_API_TOKEN nor anything starting with DAPR_, in any case, as in Dapr.
func exposed(name string) bool {
	u := strings.ToUpper(name)
	return u != "APP_API_TOKEN" && !strings.HasPrefix(u, "DAPR_")
}

var errNotInitialised = errors.New(typeName + ": used before Init")

func (s *Store) ready() (*state, error) {
	st := s.st.Load()
	switch {
	case st == nil:
		return nil, errNotInitialised
	case st.closed:
		return nil, fmt.Errorf("%s: %w", st.errPrefix, component.ErrClosed)
	}
	return st, nil
}
