// Package nameresolution is the contract of name-resolution components: how
// one sidecar finds the sidecars serving another app id, for service
// invocation. The host picks one resolver per process, the Dapr way: the
// Configuration resource's spec.nameResolution.component, else the mode's
// default (mdns self-hosted, kubernetes in a cluster).
//
// A resolver answers with every address it knows for an app id; the host
// balances calls across them and skips an address that stops answering, so
// a resolver need not track liveness itself.
package nameresolution

import (
	"context"
	"errors"
)

// Instance describes the sidecar that runs the resolver: what it announces
// (mdns) or uses as defaults (kubernetes).
type Instance struct {
	// AppID and Namespace name the app this sidecar serves; Namespace is
	// the NAMESPACE environment variable, empty outside a cluster.
	AppID, Namespace string
	// Address is the IP other sidecars reach this one at.
	Address string
	// InternalPort is the port of this sidecar's sidecar-to-sidecar
	// channel, the port other sidecars call.
	InternalPort int
}

// Metadata is what a resolver receives at Init.
type Metadata struct {
	Instance Instance
	// Configuration is spec.nameResolution.configuration as decoded from
	// YAML: nested map[string]any, []any, string, bool, int and float64
	// values. Nil when the Configuration gives none. A resolver reports a
	// value it cannot use as an error from Init (a *component.ConfigError).
	Configuration map[string]any
}

// Request names the app whose sidecars are wanted.
type Request struct {
	ID string
	// Namespace is the target's namespace when the caller named one
	// ("id.namespace"), else empty: the caller's own.
	Namespace string
}

// Resolver finds sidecars by app id. Implementations are safe for
// concurrent use once Init has returned.
type Resolver interface {
	// Init starts the resolver (an mdns resolver starts announcing this
	// sidecar). ctx bounds the start only, not the resolver's life.
	Init(ctx context.Context, md Metadata) error
	// Resolve returns the addresses ("host:port") of the sidecars serving
	// req.ID, at least one, in no particular order; the caller owns the
	// slice. It returns an error wrapping ErrNotFound when none is known
	// by ctx's deadline.
	Resolve(ctx context.Context, req Request) ([]string, error)
	// Close stops announcing and releases what Init took. It is called
	// exactly once, also after a failed Init.
	Close(ctx context.Context) error
}

// ErrNotFound: no sidecar serves the app id, as far as the resolver knows.
var ErrNotFound = errors.New("no sidecar found for the app id")
