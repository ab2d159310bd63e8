package memory

import (
	"context"
	"fmt"
	"math/bits"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/state"
)

// Multi applies req's operations in order, atomically: either every one of
// them takes effect or none does. Each operation's ETag, first-write and TTL
// conditions are checked against the state as the operations before it in
// the same transaction leave it, so one key may appear several times.
// Deleting a missing key without an ETag succeeds. The first failing
// operation aborts the transaction; its error names the operation's index
// and wraps the cause (a *state.ETagError, or component.ErrInvalidArgument).
//
// Only per-operation metadata is read (ttlInSeconds); req.Metadata is not.
func (s *Store) Multi(_ context.Context, req *state.TransactionRequest) error {
	// Everything that does not depend on stored values is checked, and every
	// value copied, before any lock is taken.
	var now int64
	ws := make([]write, len(req.Operations))
	var touched uint64 // bit i set: the transaction touches shard i
	for i, op := range req.Operations {
		var err error
		switch op := op.(type) {
		case *state.SetRequest:
			if op == nil {
				err = errNilOperation
				break
			}
			ws[i], err = s.prepareSet(op, &now)
		case *state.DeleteRequest:
			if op == nil {
				err = errNilOperation
				break
			}
			ws[i], err = prepareDelete(op)
		default:
			err = fmt.Errorf("state.in-memory: %w: unsupported operation %T", component.ErrInvalidArgument, op)
		}
		if err != nil {
			return fmt.Errorf("operation %d: %w", i, err)
		}
		touched |= 1 << s.shardIndex(ws[i].key)
	}

	s.lockShards(touched)
	defer s.unlockShards(touched)
	if s.closed.Load() {
		return errClosed
	}

	// Validate in order against the stored state overlaid with the writes
	// validated so far. Versions are handed out here, so an aborted
	// transaction leaves gaps in the counter, never a reused ETag.
	pending := make(map[string]*write, len(ws))
	for i := range ws {
		w := &ws[i]
		var cur *entry
		if p, ok := pending[w.key]; ok {
			if !p.del {
				cur = &p.e
			}
		} else if e, ok := s.shards[s.shardIndex(w.key)].items[w.key]; ok && s.alive(&e, &now) {
			cur = &e
		}
		if err := w.guard.check(w.key, cur); err != nil {
			return fmt.Errorf("operation %d: %w", i, err)
		}
		if !w.del {
			s.stamp(&w.e)
		}
		pending[w.key] = w
	}

	// Nothing below can fail.
	for i := range ws {
		w := &ws[i]
		sh := &s.shards[s.shardIndex(w.key)]
		old, had := sh.items[w.key]
		hadTTL := had && old.expireAt != 0
		if w.del {
			if had {
				sh.remove(w.key, hadTTL)
			}
			continue
		}
		sh.put(w.key, w.e, hadTTL)
	}
	return nil
}

var errNilOperation = fmt.Errorf("state.in-memory: %w: nil operation", component.ErrInvalidArgument)

// lockShards write-locks every shard in the set, in index order, so two
// transactions can never wait for each other.
func (s *Store) lockShards(set uint64) {
	for set != 0 {
		i := bits.TrailingZeros64(set)
		s.shards[i].mu.Lock()
		set &^= 1 << i
	}
}

func (s *Store) unlockShards(set uint64) {
	for set != 0 {
		i := bits.TrailingZeros64(set)
		s.shards[i].mu.Unlock()
		set &^= 1 << i
	}
}
