package api

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/state"
)

// keySeparator joins a prefix and a key; a key may not contain it.
const keySeparator = "||"

// StatePrefix returns the stored-key prefix for a store under Dapr's
// keyPrefix strategies: appid (default), name, none, or a custom string.
func StatePrefix(strategy, appID, storeName string) string {
	switch strings.ToLower(strategy) {
	case "", "appid":
		return appID
	case "name":
		return storeName
	case "none":
		return ""
	default:
		return strategy
	}
}

func (s *StateStore) storedKey(key string) string {
	if s.Prefix == "" {
		return key
	}
	return s.Prefix + keySeparator + key
}

// stateStore finds a store and admits one call on it: the caller must call
// s.Gate.Leave when done. A store retired by a reload in the meantime is
// looked up again in the new snapshot.
func (a *API) stateStore(name string) (*StateStore, *Error) {
	for {
		snap := a.snapshot.Load()
		if len(snap.States) == 0 {
			return nil, errorf(CodeStateStoreNotConfigured, nil, "state store is not configured")
		}
		s, ok := snap.States[name]
		if !ok {
			return nil, errorf(CodeStateStoreNotFound, nil, "state store %s is not found", name)
		}
		if s.Gate.Enter() {
			return s, nil
		}
	}
}

func checkKey(key string) *Error {
	if key == "" {
		return errorf(CodeMalformedRequest, nil, `"key" is a required field`)
	}
	if strings.Contains(key, keySeparator) {
		return errorf(CodeMalformedRequest, nil, "input key/keyPrefix '%s' can't contain '%s'", key, keySeparator)
	}
	return nil
}

// GetStateRequest asks for one key.
type GetStateRequest struct {
	Store       string
	Key         string
	Consistency string
	Metadata    map[string]string
}

// GetStateResponse is a value found; a nil response means the key is missing.
type GetStateResponse struct {
	Data        []byte
	ETag        string
	ContentType string
	Metadata    map[string]string
}

// GetState reads one key. It returns (nil, nil) when the key does not exist.
func (a *API) GetState(ctx context.Context, in *GetStateRequest) (*GetStateResponse, error) {
	s, e := a.stateStore(in.Store)
	if e != nil {
		return nil, e
	}
	defer s.Gate.Leave()
	if e := checkKey(in.Key); e != nil {
		return nil, e
	}
	span := a.componentSpan(ctx, "state", "Get", &s.Info)
	res, err := s.Store.Get(ctx, &state.GetRequest{
		Key:      s.storedKey(in.Key),
		Metadata: in.Metadata,
		Options:  state.Options{Consistency: in.Consistency},
	})
	endComponent(span, err)
	if err != nil {
		if errors.Is(err, component.ErrNotFound) {
			return nil, nil
		}
		return nil, errorf(CodeStateGet, err, "fail to get %s from state store %s: %v", in.Key, in.Store, err)
	}
	return &GetStateResponse{Data: res.Data, ETag: res.ETag, ContentType: res.ContentType, Metadata: res.Metadata}, nil
}

// SaveStateItem is one element of a save request.
type SaveStateItem struct {
	Key      string
	Value    []byte // the value's JSON encoding, stored as is
	ETag     *string
	Metadata map[string]string
	Options  state.Options
}

// SaveStateRequest saves items to one store. Metadata (from the query) is
// merged into every item's metadata and wins on conflict.
type SaveStateRequest struct {
	Store    string
	Items    []SaveStateItem
	Metadata map[string]string
}

// SaveState writes the items.
func (a *API) SaveState(ctx context.Context, in *SaveStateRequest) error {
	s, e := a.stateStore(in.Store)
	if e != nil {
		return e
	}
	defer s.Gate.Leave()
	reqs := make([]state.SetRequest, len(in.Items))
	for i := range in.Items {
		it := &in.Items[i]
		if e := checkKey(it.Key); e != nil {
			return e
		}
		if e := checkOptions(it.Options); e != nil {
			return e
		}
		reqs[i] = state.SetRequest{
			Key:         s.storedKey(it.Key),
			Value:       it.Value,
			ETag:        it.ETag,
			ContentType: contentTypeOf(it.Metadata),
			Metadata:    mergeMetadata(it.Metadata, in.Metadata),
			Options:     it.Options,
		}
	}
	if len(reqs) == 0 {
		return nil
	}
	var err error
	span := a.componentSpan(ctx, "state", "Set", &s.Info)
	switch {
	case len(reqs) == 1:
		err = s.Store.Set(ctx, &reqs[0])
	case s.Bulk != nil:
		err = s.Bulk.BulkSet(ctx, reqs)
	default:
		errs := make([]error, len(reqs))
		for i := range reqs {
			errs[i] = s.Store.Set(ctx, &reqs[i])
		}
		err = errors.Join(errs...)
	}
	endComponent(span, err)
	if err != nil {
		return errorf(CodeStateSave, err, "failed saving state in state store %s: %v", in.Store, err)
	}
	return nil
}

func contentTypeOf(md map[string]string) string {
	if ct, ok := md["contentType"]; ok {
		return ct
	}
	return ""
}

func checkOptions(o state.Options) *Error {
	switch o.Concurrency {
	case "", state.FirstWrite, state.LastWrite:
	default:
		return errorf(CodeMalformedRequest, nil, "invalid concurrency %q: must be %s or %s", o.Concurrency, state.FirstWrite, state.LastWrite)
	}
	switch o.Consistency {
	case "", state.Strong, state.Eventual:
	default:
		return errorf(CodeMalformedRequest, nil, "invalid consistency %q: must be %s or %s", o.Consistency, state.Strong, state.Eventual)
	}
	return nil
}

// mergeMetadata returns item metadata with query metadata laid over it. It
// returns one of its arguments unchanged when the other is empty.
func mergeMetadata(item, query map[string]string) map[string]string {
	if len(query) == 0 {
		return item
	}
	if len(item) == 0 {
		return query
	}
	out := make(map[string]string, len(item)+len(query))
	for k, v := range item {
		out[k] = v
	}
	for k, v := range query {
		out[k] = v
	}
	return out
}

// DeleteStateRequest removes one key.
type DeleteStateRequest struct {
	Store    string
	Key      string
	ETag     *string
	Options  state.Options
	Metadata map[string]string
}

// DeleteState removes one key.
func (a *API) DeleteState(ctx context.Context, in *DeleteStateRequest) error {
	s, e := a.stateStore(in.Store)
	if e != nil {
		return e
	}
	defer s.Gate.Leave()
	if e := checkKey(in.Key); e != nil {
		return e
	}
	if e := checkOptions(in.Options); e != nil {
		return e
	}
	span := a.componentSpan(ctx, "state", "Delete", &s.Info)
	err := s.Store.Delete(ctx, &state.DeleteRequest{
		Key: s.storedKey(in.Key), ETag: in.ETag, Metadata: in.Metadata, Options: in.Options,
	})
	endComponent(span, err)
	if err != nil {
		return errorf(CodeStateDelete, err, "failed deleting state with key %s: %v", in.Key, err)
	}
	return nil
}

// BulkGetStateRequest asks for several keys.
type BulkGetStateRequest struct {
	Store       string
	Keys        []string
	Parallelism int
	Metadata    map[string]string
}

// BulkStateItem is one key's result, in request order. Data is nil for a
// missing key; Error is set when reading that key failed.
type BulkStateItem struct {
	Key      string
	Data     []byte
	ETag     string
	Metadata map[string]string
	Error    string
}

// defaultParallelism bounds concurrent single-key reads for stores without a
// native bulk get, as Dapr does when the request does not say.
const defaultParallelism = 100

// BulkGetState reads several keys.
func (a *API) BulkGetState(ctx context.Context, in *BulkGetStateRequest) ([]BulkStateItem, error) {
	s, e := a.stateStore(in.Store)
	if e != nil {
		return nil, e
	}
	defer s.Gate.Leave()
	out := make([]BulkStateItem, len(in.Keys))
	reqs := make([]state.GetRequest, len(in.Keys))
	for i, k := range in.Keys {
		if e := checkKey(k); e != nil {
			return nil, e
		}
		out[i].Key = k
		reqs[i] = state.GetRequest{Key: s.storedKey(k), Metadata: in.Metadata}
	}
	if len(reqs) == 0 {
		return out, nil
	}
	span := a.componentSpan(ctx, "state", "BulkGet", &s.Info)
	if s.Bulk != nil {
		items, err := s.Bulk.BulkGet(ctx, reqs)
		endComponent(span, err)
		if err != nil {
			return nil, errorf(CodeStateBulkGet, err, "failed getting bulk state from state store %s: %v", in.Store, err)
		}
		if len(items) != len(reqs) {
			return nil, errorf(CodeStateBulkGet, nil, "state store %s returned %d results for %d keys", in.Store, len(items), len(reqs))
		}
		for i, it := range items {
			out[i].Data, out[i].ETag, out[i].Metadata = it.Data, it.ETag, it.Metadata
			if it.Err != nil {
				out[i].Error = it.Err.Error()
			}
		}
		return out, nil
	}
	par := in.Parallelism
	if par <= 0 {
		par = defaultParallelism
	}
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i := range reqs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			res, err := s.Store.Get(ctx, &reqs[i])
			switch {
			case errors.Is(err, component.ErrNotFound):
			case err != nil:
				out[i].Error = err.Error()
			default:
				out[i].Data, out[i].ETag, out[i].Metadata = res.Data, res.ETag, res.Metadata
			}
		})
	}
	wg.Wait()
	endComponent(span, nil)
	return out, nil
}

// TransactionOperation is one step of a transaction: "upsert" or "delete".
type TransactionOperation struct {
	Operation string
	Key       string
	Value     []byte
	ETag      *string
	Metadata  map[string]string
	Options   state.Options
}

// TransactionRequest applies operations atomically.
type TransactionRequest struct {
	Store      string
	Operations []TransactionOperation
	Metadata   map[string]string
}

// Transaction applies the operations all-or-nothing.
func (a *API) Transaction(ctx context.Context, in *TransactionRequest) error {
	s, e := a.stateStore(in.Store)
	if e != nil {
		return e
	}
	defer s.Gate.Leave()
	if s.Tx == nil {
		return errorf(CodeStateNotSupported, nil, "state store %s doesn't support transaction", in.Store)
	}
	ops := make([]state.Operation, len(in.Operations))
	for i, op := range in.Operations {
		if e := checkKey(op.Key); e != nil {
			return e
		}
		if e := checkOptions(op.Options); e != nil {
			return e
		}
		switch op.Operation {
		case "upsert":
			ops[i] = &state.SetRequest{
				Key: s.storedKey(op.Key), Value: op.Value, ETag: op.ETag,
				ContentType: contentTypeOf(op.Metadata), Metadata: op.Metadata, Options: op.Options,
			}
		case "delete":
			ops[i] = &state.DeleteRequest{Key: s.storedKey(op.Key), ETag: op.ETag, Metadata: op.Metadata, Options: op.Options}
		default:
			return errorf(CodeStateOperationNotSupported, nil, "operation type %s not supported", op.Operation)
		}
	}
	span := a.componentSpan(ctx, "state", "Transaction", &s.Info)
	err := s.Tx.Multi(ctx, &state.TransactionRequest{Operations: ops, Metadata: in.Metadata})
	endComponent(span, err)
	if err != nil {
		return errorf(CodeStateTransaction, err, "error while executing state transaction: %v", err)
	}
	return nil
}

// BulkDeleteState removes several keys of one store, one at a time (no
// store offers a native bulk delete); every failure is reported.
func (a *API) BulkDeleteState(ctx context.Context, store string, reqs []DeleteStateRequest) error {
	var errs []error
	for i := range reqs {
		reqs[i].Store = store
		if err := a.DeleteState(ctx, &reqs[i]); err != nil {
			var e *Error
			if errors.As(err, &e) && e.Code != CodeStateDelete {
				return err
			}
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return errorf(CodeStateDelete, err, "failed deleting state in state store %s: %v", store, err)
	}
	return nil
}
