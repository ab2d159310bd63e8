package api

import (
	"context"
	"strings"

	"github.com/wapr-dev/wapr/host/component/lock"
)

// LockStore is a lock store as the API serves it.
type LockStore struct {
	Info
	Store lock.Store
	// Prefix goes before the resource id, as "lock||"+Prefix+"||"+id, or
	// "lock||"+id when empty (daprd's keyPrefix).
	Prefix string
}

// LockPrefix returns the part of a lock key daprd puts between "lock||" and
// the resource id for the keyPrefix strategy (metadata keyPrefix, read
// case-insensitively and lower-cased as daprd does): appid (the default) the
// app id, name the store name, none nothing, anything else itself.
func LockPrefix(strategy, appID, storeName string) string {
	switch strings.ToLower(strategy) {
	case "", "appid":
		return appID
	case "none":
		return ""
	case "name":
		return storeName
	default:
		return strings.ToLower(strategy)
	}
}

func (s *LockStore) resourceKey(id string) string {
	if s.Prefix == "" {
		return "lock" + keySeparator + id
	}
	return "lock" + keySeparator + s.Prefix + keySeparator + id
}

// lockStore checks a request the way daprd does (stores configured, then
// the fields, then the store name) and admits one call on the store: the
// caller must call s.Gate.Leave when done.
func (a *API) lockStore(name, resourceID, owner string) (*LockStore, *Error) {
	for {
		snap := a.snapshot.Load()
		if len(snap.Locks) == 0 {
			return nil, errorf(CodeLockStoreNotConfigured, nil, "lock store is not configured")
		}
		if resourceID == "" {
			return nil, errorf(CodeMalformedRequest, nil, "ResourceId is empty in lock store %s", name)
		}
		if owner == "" {
			return nil, errorf(CodeMalformedRequest, nil, "LockOwner is empty in lock store %s", name)
		}
		s, ok := snap.Locks[name]
		if !ok {
			return nil, errorf(CodeLockStoreNotFound, nil, "lock store %s not found", name)
		}
		if s.Gate.Enter() {
			return s, nil
		}
	}
}

// TryLockRequest asks for a lock.
type TryLockRequest struct {
	Store           string
	ResourceID      string
	LockOwner       string
	ExpiryInSeconds int32
}

// TryLock takes a lock; false means someone holds it.
func (a *API) TryLock(ctx context.Context, in *TryLockRequest) (bool, error) {
	if in.ExpiryInSeconds <= 0 {
		return false, errorf(CodeMalformedRequest, nil, "ExpiryInSeconds is not positive in lock store %s", in.Store)
	}
	s, e := a.lockStore(in.Store, in.ResourceID, in.LockOwner)
	if e != nil {
		return false, e
	}
	defer s.Gate.Leave()
	if strings.Contains(in.ResourceID, keySeparator) {
		return false, errorf(CodeTryLock, nil, "failed to try acquiring lock: input key/keyPrefix '%s' can't contain '%s'", in.ResourceID, keySeparator)
	}
	span := a.componentSpan(ctx, "lock", "TryLock", &s.Info)
	ok, err := s.Store.TryLock(ctx, &lock.TryLockRequest{
		ResourceID: s.resourceKey(in.ResourceID), LockOwner: in.LockOwner, ExpiryInSeconds: in.ExpiryInSeconds,
	})
	endComponent(span, err)
	if err != nil {
		return false, errorf(CodeTryLock, err, "failed to try acquiring lock: %v", err)
	}
	return ok, nil
}

// UnlockRequest asks to release a lock.
type UnlockRequest struct {
	Store      string
	ResourceID string
	LockOwner  string
}

// Unlock releases a lock held by the owner.
func (a *API) Unlock(ctx context.Context, in *UnlockRequest) (lock.UnlockStatus, error) {
	s, e := a.lockStore(in.Store, in.ResourceID, in.LockOwner)
	if e != nil {
		return lock.UnlockInternalError, e
	}
	defer s.Gate.Leave()
	if strings.Contains(in.ResourceID, keySeparator) {
		return lock.UnlockInternalError, errorf(CodeUnlock, nil, "failed to release lock: input key/keyPrefix '%s' can't contain '%s'", in.ResourceID, keySeparator)
	}
	span := a.componentSpan(ctx, "lock", "Unlock", &s.Info)
	status, err := s.Store.Unlock(ctx, &lock.UnlockRequest{ResourceID: s.resourceKey(in.ResourceID), LockOwner: in.LockOwner})
	endComponent(span, err)
	if err != nil {
		return lock.UnlockInternalError, errorf(CodeUnlock, err, "failed to release lock: %v", err)
	}
	return status, nil
}
