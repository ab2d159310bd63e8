// Package lock is the contract of a distributed lock store.
//
// Resource ids reaching a store are already prefixed by the host (Dapr's
// keyPrefix, "lock||<app id>||<resource id>" by default), so locks taken by
// different apps on one backend do not collide; stores use the id as given.
package lock

import (
	"context"

	"github.com/wapr-dev/wapr/host/component"
)

// Store is a lock store. Implementations must be safe for concurrent use.
type Store interface {
	component.Lifecycle
	// TryLock takes the lock on req.ResourceID for req.LockOwner when nobody
	// holds it, for req.Expiry. It returns false, nil when someone holds it
	// (the owner itself included: locks are not re-entrant).
	TryLock(ctx context.Context, req *TryLockRequest) (bool, error)
	// Unlock releases the lock when req.LockOwner holds it.
	Unlock(ctx context.Context, req *UnlockRequest) (UnlockStatus, error)
}

// TryLockRequest asks for a lock.
type TryLockRequest struct {
	ResourceID string
	LockOwner  string
	// ExpiryInSeconds is how long the lock holds unless released; the host
	// only passes positive values.
	ExpiryInSeconds int32
}

// UnlockRequest asks to release a lock.
type UnlockRequest struct {
	ResourceID string
	LockOwner  string
}

// UnlockStatus is the outcome of Unlock, with Dapr's numeric values (they
// appear unchanged in the HTTP answer {"status":N}).
type UnlockStatus int32

// Unlock outcomes.
const (
	UnlockSuccess             UnlockStatus = 0
	UnlockLockDoesNotExist    UnlockStatus = 1
	UnlockLockBelongsToOthers UnlockStatus = 2
	UnlockInternalError       UnlockStatus = 3
)
