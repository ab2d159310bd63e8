// Package configuration is the contract of a configuration store: a set of
// versioned key/value items an app reads and subscribes to.
package configuration

import (
	"context"

	"github.com/wapr-dev/wapr/host/component"
)

// Item is one configuration item.
type Item struct {
	Value    string
	Version  string
	Metadata map[string]string
}

// Store is a configuration store. Implementations must be safe for
// concurrent use.
type Store interface {
	component.Lifecycle
	// Get returns the items named in req.Keys, or every item when Keys is
	// empty. A key that does not exist is left out of the map (not an
	// error). The returned map belongs to the caller.
	Get(ctx context.Context, req *GetRequest) (map[string]*Item, error)
	// Subscribe starts watching req.Keys (every key when empty) and calls h
	// with each change until Unsubscribe or Close. It returns the
	// subscription's id, unique within the store. h is called from one
	// goroutine per subscription, never concurrently with itself; an error
	// from h is logged by the host and does not end the subscription.
	Subscribe(ctx context.Context, req *SubscribeRequest, h UpdateHandler) (string, error)
	// Unsubscribe stops the subscription id; once it returns, h is not
	// called again for it. An unknown id is an error wrapping
	// component.ErrNotFound.
	Unsubscribe(ctx context.Context, id string) error
}

// GetRequest asks for items.
type GetRequest struct {
	Keys     []string
	Metadata map[string]string
}

// SubscribeRequest asks to watch items.
type SubscribeRequest struct {
	Keys     []string
	Metadata map[string]string
}

// Update is one change seen by a subscription. A deleted key is reported
// with an empty Value and Version.
type Update struct {
	ID    string
	Items map[string]*Item
}

// UpdateHandler receives the changes of a subscription.
type UpdateHandler func(ctx context.Context, u *Update) error
