// Package secretstores is the contract of a secret store.
//
// A secret has a name and holds one or more key/value pairs. Name/value
// stores (secretstores.local.env, local.file without multiValued) hold one
// pair per secret, keyed by the secret's own name; multi-valued stores
// declare FeatureMultipleKeyValuesPerSecret.
//
// The host resolves secretKeyRef items of other components through Store, and
// serves GET /v1.0/secrets/… with it after applying the Configuration's
// secret scopes; stores never see scopes.
package secretstores

import (
	"context"

	"github.com/wapr-dev/wapr/host/component"
)

// FeatureMultipleKeyValuesPerSecret is declared by stores whose secrets hold
// several key/value pairs (Dapr's name).
const FeatureMultipleKeyValuesPerSecret component.Feature = "MULTIPLE_KEY_VALUES_PER_SECRET"

// Store is a secret store. Implementations must be safe for concurrent use.
type Store interface {
	component.Lifecycle
	Features() []component.Feature
	// GetSecret returns the key/value pairs of the secret req.Name, or an
	// error wrapping component.ErrNotFound when there is no such secret. The
	// returned map belongs to the caller.
	GetSecret(ctx context.Context, req *GetRequest) (map[string]string, error)
	// BulkGetSecret returns every secret the store holds, by name. The
	// returned maps belong to the caller.
	BulkGetSecret(ctx context.Context, req *BulkGetRequest) (map[string]map[string]string, error)
}

// GetRequest asks for one secret.
type GetRequest struct {
	Name string
	// Metadata holds the request's metadata.* query parameters (prefix
	// stripped); nil when none.
	Metadata map[string]string
}

// BulkGetRequest asks for every secret.
type BulkGetRequest struct {
	Metadata map[string]string
}
