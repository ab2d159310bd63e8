package compat_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	statememory "github.com/wapr-dev/wapr/builtin/state/memory"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/bindings"
	"github.com/wapr-dev/wapr/host/component/configuration"
	"github.com/wapr-dev/wapr/host/component/lock"
	"github.com/wapr-dev/wapr/host/component/pubsub"
	"github.com/wapr-dev/wapr/host/component/state"
)

// errBackend is what the broken doubles fail with: an outage, as when the
// backend is down.
var errBackend = errors.New("backend unavailable")

// lifecycle is the Init/Close the doubles share.
type lifecycle struct{}

func (lifecycle) Init(context.Context, component.Metadata) error { return nil }
func (lifecycle) Close(context.Context) error                    { return nil }

// plainStore is an in-memory state store that is not transactional.
type plainStore struct{ state.Store }

func newPlainStore() plainStore { return plainStore{statememory.New()} }

func (s plainStore) Features() []component.Feature {
	return slices.DeleteFunc(s.Store.Features(), func(f component.Feature) bool { return f == "TRANSACTIONAL" })
}

// brokenStore fails every call; a Get of the key "invalid" is refused as
// an invalid request instead.
type brokenStore struct{ lifecycle }

var (
	_ state.BulkStore     = brokenStore{}
	_ state.Transactional = brokenStore{}
)

func (brokenStore) Features() []component.Feature {
	return []component.Feature{"ETAG", "TRANSACTIONAL"}
}

func (brokenStore) Get(_ context.Context, req *state.GetRequest) (*state.GetResponse, error) {
	if req.Key == appID+"||invalid" {
		return nil, fmt.Errorf("key %q: %w", req.Key, component.ErrInvalidArgument)
	}
	return nil, errBackend
}
func (brokenStore) Set(context.Context, *state.SetRequest) error       { return errBackend }
func (brokenStore) Delete(context.Context, *state.DeleteRequest) error { return errBackend }
func (brokenStore) BulkGet(context.Context, []state.GetRequest) ([]state.BulkGetItem, error) {
	return nil, errBackend
}
func (brokenStore) BulkSet(context.Context, []state.SetRequest) error       { return errBackend }
func (brokenStore) BulkDelete(context.Context, []state.DeleteRequest) error { return errBackend }
func (brokenStore) Multi(context.Context, *state.TransactionRequest) error  { return errBackend }

// brokenPubSub refuses every message.
type brokenPubSub struct{ lifecycle }

func (brokenPubSub) Features() []component.Feature                         { return nil }
func (brokenPubSub) Publish(context.Context, *pubsub.PublishRequest) error { return errBackend }
func (brokenPubSub) Subscribe(context.Context, pubsub.SubscribeRequest, pubsub.Handler) error {
	return errBackend
}

// brokenBinding is an output binding that offers create and fails it.
type brokenBinding struct{ lifecycle }

var _ bindings.Output = brokenBinding{}

func (brokenBinding) Operations() []bindings.Operation {
	return []bindings.Operation{bindings.OperationCreate}
}

func (brokenBinding) Invoke(_ context.Context, req *bindings.InvokeRequest) (*bindings.InvokeResponse, error) {
	if req.Operation != bindings.OperationCreate {
		return nil, fmt.Errorf("operation %q: %w", req.Operation, component.ErrNotSupported)
	}
	return nil, errBackend
}

// brokenConfiguration fails every call.
type brokenConfiguration struct{ lifecycle }

func (brokenConfiguration) Get(context.Context, *configuration.GetRequest) (map[string]*configuration.Item, error) {
	return nil, errBackend
}

func (brokenConfiguration) Subscribe(context.Context, *configuration.SubscribeRequest, configuration.UpdateHandler) (string, error) {
	return "", errBackend
}
func (brokenConfiguration) Unsubscribe(context.Context, string) error { return errBackend }

// brokenLock fails every call.
type brokenLock struct{ lifecycle }

func (brokenLock) TryLock(context.Context, *lock.TryLockRequest) (bool, error) {
	return false, errBackend
}

func (brokenLock) Unlock(context.Context, *lock.UnlockRequest) (lock.UnlockStatus, error) {
	return 0, errBackend
}

// memoryLock is a working lock store kept in memory.
type memoryLock struct {
	lifecycle
	mu     sync.Mutex
	owners map[string]lockEntry
}

type lockEntry struct {
	owner   string
	expires time.Time
}

func newMemoryLock() *memoryLock { return &memoryLock{owners: map[string]lockEntry{}} }

func (m *memoryLock) TryLock(_ context.Context, req *lock.TryLockRequest) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.owners[req.ResourceID]; ok && time.Now().Before(e.expires) {
		return false, nil
	}
	m.owners[req.ResourceID] = lockEntry{owner: req.LockOwner, expires: time.Now().Add(time.Duration(req.ExpiryInSeconds) * time.Second)}
	return true, nil
}

func (m *memoryLock) Unlock(_ context.Context, req *lock.UnlockRequest) (lock.UnlockStatus, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.owners[req.ResourceID]
	switch {
	case !ok || time.Now().After(e.expires):
		return lock.UnlockLockDoesNotExist, nil
	case e.owner != req.LockOwner:
		return lock.UnlockLockBelongsToOthers, nil
	}
	delete(m.owners, req.ResourceID)
	return lock.UnlockSuccess, nil
}
