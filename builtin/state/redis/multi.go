package redis

import (
	"context"
	"fmt"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/state"
)

// Multi applies req's operations in order, atomically, in one script call:
// the script checks every operation's ETag and first-write condition against
// the state the operations before it leave, and writes only when all of
// them hold. So either every operation takes effect or none does, and no
// other client sees a partial transaction. Deleting a missing key without an
// ETag succeeds. The first failing operation aborts the transaction; its
// error names the operation's index and wraps the cause (a *state.ETagError,
// or component.ErrInvalidArgument).
//
// Only per-operation metadata is read (ttlInSeconds); req.Metadata is not.
// All keys of a transaction must live on the one server the store talks to,
// which always holds since Redis Cluster is not supported.
func (s *Store) Multi(ctx context.Context, req *state.TransactionRequest) error {
	if err := s.ready(); err != nil {
		return err
	}
	ws := make([]write, len(req.Operations))
	for i, op := range req.Operations {
		var err error
		switch op := op.(type) {
		case *state.SetRequest:
			if op == nil {
				err = s.errNilOperation()
				break
			}
			ws[i], err = s.prepareSet(op)
		case *state.DeleteRequest:
			if op == nil {
				err = s.errNilOperation()
				break
			}
			ws[i], err = s.prepareDelete(op)
		default:
			err = fmt.Errorf("%s: %w: unsupported operation %T", s.prefix, component.ErrInvalidArgument, op)
		}
		if err != nil {
			return fmt.Errorf("operation %d: %w", i, err)
		}
	}
	if len(ws) == 0 {
		return nil
	}
	failed, err := s.runWrites(ctx, ws)
	if err != nil {
		return s.wrap(ctx, "transaction", "", err)
	}
	if failed >= 0 {
		return fmt.Errorf("operation %d: %w", failed, state.NewETagMismatch(ws[failed].key))
	}
	return nil
}

func (s *Store) errNilOperation() error {
	return fmt.Errorf("%s: %w: nil operation", s.prefix, component.ErrInvalidArgument)
}
