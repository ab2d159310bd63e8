package api

import (
	"context"
	"errors"
	"slices"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/secretstores"
)

// SecretStore is a secret store as the API serves it.
type SecretStore struct {
	Info
	Store    secretstores.Store
	Features []component.Feature
}

// SecretScope says which secrets of one store the app may read through the
// API (the Configuration's spec.secrets.scopes). Secret references in
// component files are not subject to it.
type SecretScope struct {
	// DenyByDefault is defaultAccess: deny.
	DenyByDefault  bool
	AllowedSecrets []string
	DeniedSecrets  []string
}

// Allows applies daprd's rule: a non-empty allow list decides alone; else a
// denied secret is refused; else the default access decides.
func (s SecretScope) Allows(name string) bool {
	if len(s.AllowedSecrets) > 0 {
		return slices.Contains(s.AllowedSecrets, name)
	}
	if slices.Contains(s.DeniedSecrets, name) {
		return false
	}
	return !s.DenyByDefault
}

// SetSecretScopes sets the secret scopes by store name; stores without one
// allow every secret. Call it before serving.
func (a *API) SetSecretScopes(scopes map[string]SecretScope) { a.secretScopes = scopes }

func (a *API) secretAllowed(store, name string) bool {
	sc, ok := a.secretScopes[store]
	return !ok || sc.Allows(name)
}

// secretStore finds a store and admits one call on it: the caller must call
// s.Gate.Leave when done.
func (a *API) secretStore(name string) (*SecretStore, *Error) {
	for {
		snap := a.snapshot.Load()
		if len(snap.Secrets) == 0 {
			return nil, errorf(CodeSecretStoreNotConfigured, nil, "secret store is not configured")
		}
		s, ok := snap.Secrets[name]
		if !ok {
			return nil, errorf(CodeSecretStoreNotFound, nil, "failed finding secret store with key %s", name)
		}
		if s.Gate.Enter() {
			return s, nil
		}
	}
}

// GetSecretRequest asks for one secret.
type GetSecretRequest struct {
	Store    string
	Name     string
	Metadata map[string]string
}

// GetSecret returns the key/value pairs of one secret, if the scopes allow
// the app to read it.
func (a *API) GetSecret(ctx context.Context, in *GetSecretRequest) (map[string]string, error) {
	s, e := a.secretStore(in.Store)
	if e != nil {
		return nil, e
	}
	defer s.Gate.Leave()
	if !a.secretAllowed(in.Store, in.Name) {
		return nil, errorf(CodeSecretPermissionDenied, nil, "access denied by policy to get %q from %q", in.Name, in.Store)
	}
	span := a.componentSpan(ctx, "secrets", "Get", &s.Info)
	data, err := s.Store.GetSecret(ctx, &secretstores.GetRequest{Name: in.Name, Metadata: in.Metadata})
	endComponent(span, err)
	if err != nil {
		return nil, errorf(CodeSecretGet, err, "failed getting secret with key %s from secret store %s: %v", in.Name, in.Store, err)
	}
	return data, nil
}

// BulkGetSecretRequest asks for every secret of a store.
type BulkGetSecretRequest struct {
	Store    string
	Metadata map[string]string
}

// BulkGetSecret returns every secret of a store the scopes let the app read;
// the others are left out, as daprd does.
func (a *API) BulkGetSecret(ctx context.Context, in *BulkGetSecretRequest) (map[string]map[string]string, error) {
	s, e := a.secretStore(in.Store)
	if e != nil {
		return nil, e
	}
	defer s.Gate.Leave()
	span := a.componentSpan(ctx, "secrets", "BulkGet", &s.Info)
	data, err := s.Store.BulkGetSecret(ctx, &secretstores.BulkGetRequest{Metadata: in.Metadata})
	endComponent(span, err)
	if err != nil {
		return nil, errorf(CodeSecretGet, err, "failed getting secrets from secret store %s: %v", in.Store, err)
	}
	for name := range data {
		if !a.secretAllowed(in.Store, name) {
			delete(data, name)
		}
	}
	return data, nil
}

// ResolveSecret reads key of the secret name from store, for a component's
// secretKeyRef: no scopes apply. It is used by the host while loading, with
// stores that may not be served yet, so it takes the store itself.
func ResolveSecret(ctx context.Context, store secretstores.Store, name, key string) (string, error) {
	data, err := store.GetSecret(ctx, &secretstores.GetRequest{Name: name})
	if err != nil {
		return "", err
	}
	v, ok := data[key]
	if !ok {
		return "", errors.New("the secret has no key " + key)
	}
	return v, nil
}
