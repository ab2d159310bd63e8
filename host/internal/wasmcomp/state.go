package wasmcomp

import (
	"context"
	"errors"
	"fmt"

	"github.com/wapr-dev/wapr/abi"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/state"
)

// StateStore serves a state store from a Wasm module.
type StateStore struct {
	c    *Component
	gets batcher[state.GetRequest, *state.GetResponse]
	sets batcher[state.SetRequest, struct{}]
}

var (
	_ state.Store         = (*StateStore)(nil)
	_ state.BulkStore     = (*StateStore)(nil)
	_ state.Transactional = (*StateStore)(nil)
)

// NewStateStore returns a state store of type typ served by m.
func (l *Loader) NewStateStore(m *Module, name, typ string, annotations map[string]string) (*StateStore, error) {
	c, err := l.NewComponent(m, name, typ, annotations)
	if err != nil {
		return nil, err
	}
	s := &StateStore{c: c}
	// Bulk get items carry content types since ABI 1.1.
	s.gets.init(c, 1)
	s.sets.init(c, 1)
	s.gets.one, s.gets.many, s.gets.retryBroken = s.getOn, s.bulkGet, true
	s.sets.one, s.sets.many = s.setOn, s.bulkSet
	return s, nil
}

// Component is the Wasm component behind the store.
func (s *StateStore) Component() *Component { return s.c }

// Init starts the component's instances.
func (s *StateStore) Init(ctx context.Context, md component.Metadata) error {
	return s.c.start(ctx, md.Properties)
}

// Close drains and closes the instances.
func (s *StateStore) Close(ctx context.Context) error { return s.c.shutdown(ctx) }

// Features are the descriptor's.
func (s *StateStore) Features() []component.Feature { return features(s.c.mod.Descriptor) }

func features(d abi.Descriptor) []component.Feature {
	out := make([]component.Feature, 0, len(d.Features))
	for _, f := range d.Features {
		if f != abi.FeaturePollAhead { // wapr's own, not a Dapr feature
			out = append(out, component.Feature(f))
		}
	}
	return out
}

func concurrency(o state.Options) uint8 {
	switch o.Concurrency {
	case state.FirstWrite:
		return abi.ConcurrencyFirstWrite
	case state.LastWrite:
		return abi.ConcurrencyLastWrite
	}
	return abi.ConcurrencyUnspecified
}

func consistency(o state.Options) uint8 {
	switch o.Consistency {
	case state.Strong:
		return abi.ConsistencyStrong
	case state.Eventual:
		return abi.ConsistencyEventual
	}
	return abi.ConsistencyUnspecified
}

func setRequest(r *state.SetRequest) abi.StateSetRequest {
	m := abi.StateSetRequest{
		Key: r.Key, Value: r.Value, Metadata: r.Metadata, ContentType: r.ContentType,
		Concurrency: concurrency(r.Options), Consistency: consistency(r.Options),
	}
	if r.ETag != nil {
		m.ETag, m.HasETag = *r.ETag, true
	}
	return m
}

func deleteRequest(r *state.DeleteRequest) abi.StateDeleteRequest {
	m := abi.StateDeleteRequest{
		Key: r.Key, Metadata: r.Metadata,
		Concurrency: concurrency(r.Options), Consistency: consistency(r.Options),
	}
	if r.ETag != nil {
		m.ETag, m.HasETag = *r.ETag, true
	}
	return m
}

// Get reads one key; concurrent Gets may share a call (batch.go).
func (s *StateStore) Get(ctx context.Context, req *state.GetRequest) (*state.GetResponse, error) {
	ctx, cancel := s.c.arrive(ctx)
	defer cancel()
	if s.gets.enabled() {
		return s.gets.do(ctx, req)
	}
	return s.getOne(ctx, req)
}

func getRequest(req *state.GetRequest) abi.StateGetRequest {
	return abi.StateGetRequest{Key: req.Key, Metadata: req.Metadata, Consistency: consistency(req.Options)}
}

// getOne reads one key on a pooled instance.
func (s *StateStore) getOne(ctx context.Context, req *state.GetRequest) (*state.GetResponse, error) {
	i, err := s.c.pool.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.getOn(ctx, i, req)
}

// getOn reads one key on instance i, which it returns to the pool.
func (s *StateStore) getOn(ctx context.Context, i *instance, req *state.GetRequest) (*state.GetResponse, error) {
	in := getRequest(req)
	var res *state.GetResponse
	err := s.c.doOn(ctx, i, stateFamily, abi.StateGet, &in, func(st abi.Status, out []byte) error {
		if st != abi.StatusOK {
			return statusError(st, out)
		}
		var m abi.StateGetResponse
		if err := m.Decode(out); err != nil {
			return malformed("get response", err)
		}
		res = &state.GetResponse{Data: append([]byte(nil), m.Data...), ETag: m.ETag, ContentType: m.ContentType, Metadata: m.Metadata}
		return nil
	})
	return res, err
}

// Set writes one key; concurrent Sets may share a call (batch.go).
func (s *StateStore) Set(ctx context.Context, req *state.SetRequest) error {
	ctx, cancel := s.c.arrive(ctx)
	defer cancel()
	if s.sets.enabled() {
		_, err := s.sets.do(ctx, req)
		return err
	}
	in := setRequest(req)
	return s.c.do(ctx, stateFamily, abi.StateSet, &in, okOnly)
}

// setOn writes one key on instance i, which it returns to the pool.
func (s *StateStore) setOn(ctx context.Context, i *instance, req *state.SetRequest) (struct{}, error) {
	in := setRequest(req)
	return struct{}{}, s.c.doOn(ctx, i, stateFamily, abi.StateSet, &in, okOnly)
}

// Delete removes one key.
func (s *StateStore) Delete(ctx context.Context, req *state.DeleteRequest) error {
	in := deleteRequest(req)
	return s.c.do(ctx, stateFamily, abi.StateDelete, &in, okOnly)
}

// BulkGet reads several keys in one call.
func (s *StateStore) BulkGet(ctx context.Context, reqs []state.GetRequest) ([]state.BulkGetItem, error) {
	in := abi.StateBulkGetRequest{Requests: make([]abi.StateGetRequest, len(reqs))}
	for i, r := range reqs {
		in.Requests[i] = getRequest(&r)
	}
	var items []state.BulkGetItem
	err := s.c.do(ctx, stateFamily, abi.StateBulkGet, &in, func(st abi.Status, out []byte) error {
		if st != abi.StatusOK {
			return statusError(st, out)
		}
		var m abi.StateBulkGetResponse
		if err := m.Decode(out); err != nil {
			return malformed("bulk get response", err)
		}
		if len(m.Items) != len(reqs) {
			return fmt.Errorf("%w: bulk get answered %d items for %d keys", errBroken, len(m.Items), len(reqs))
		}
		items = make([]state.BulkGetItem, len(m.Items))
		for i, it := range m.Items {
			items[i] = state.BulkGetItem{Key: reqs[i].Key, ETag: it.ETag, Metadata: it.Metadata}
			if it.Found {
				items[i].Data = append([]byte{}, it.Data...)
			}
			if it.Error != "" {
				items[i].Err = errors.New(it.Error)
			}
		}
		return nil
	})
	return items, err
}

// bulkResult joins the per-key failures of a bulk write.
func bulkResult(st abi.Status, out []byte) error {
	if st != abi.StatusOK {
		return statusError(st, out)
	}
	var m abi.BulkResult
	if err := m.Decode(out); err != nil {
		return malformed("bulk result", err)
	}
	errs := make([]error, 0, len(m.Errors))
	for _, e := range m.Errors {
		var rec abi.Encoder
		(&abi.ErrorRecord{Message: e.Message, Key: e.Key}).Encode(&rec)
		errs = append(errs, fmt.Errorf("key %s: %w", e.Key, statusError(e.Status, rec.Bytes())))
	}
	return errors.Join(errs...)
}

// BulkSet writes several keys in one call (not atomically).
func (s *StateStore) BulkSet(ctx context.Context, reqs []state.SetRequest) error {
	in := abi.StateBulkSetRequest{Requests: make([]abi.StateSetRequest, len(reqs))}
	for i := range reqs {
		in.Requests[i] = setRequest(&reqs[i])
	}
	return s.c.do(ctx, stateFamily, abi.StateBulkSet, &in, bulkResult)
}

// BulkDelete removes several keys in one call (not atomically).
func (s *StateStore) BulkDelete(ctx context.Context, reqs []state.DeleteRequest) error {
	in := abi.StateBulkDeleteRequest{Requests: make([]abi.StateDeleteRequest, len(reqs))}
	for i := range reqs {
		in.Requests[i] = deleteRequest(&reqs[i])
	}
	return s.c.do(ctx, stateFamily, abi.StateBulkDelete, &in, bulkResult)
}

// Multi applies a transaction in one call; the guest makes it atomic.
func (s *StateStore) Multi(ctx context.Context, req *state.TransactionRequest) error {
	in := abi.StateTransactRequest{Metadata: req.Metadata, Operations: make([]abi.StateOperation, 0, len(req.Operations))}
	for _, op := range req.Operations {
		switch r := op.(type) {
		case *state.SetRequest:
			m := setRequest(r)
			in.Operations = append(in.Operations, abi.StateOperation{Set: &m})
		case *state.DeleteRequest:
			m := deleteRequest(r)
			in.Operations = append(in.Operations, abi.StateOperation{Delete: &m})
		default:
			return fmt.Errorf("%w: unknown transaction operation %T", component.ErrInvalidArgument, op)
		}
	}
	return s.c.do(ctx, stateFamily, abi.StateTransact, &in, okOnly)
}
