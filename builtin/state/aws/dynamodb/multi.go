package dynamodb

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/state"
)

// maxTransactionOps is the most operations one TransactWriteItems call
// takes.
const maxTransactionOps = 100

// Multi applies req's operations atomically with TransactWriteItems:
// either all of them take effect or none does.
//
// More than 100 operations are refused up front with an error wrapping
// component.ErrInvalidArgument. DynamoDB allows one action per item in a
// transaction, so several operations on one key are folded into one: the
// last operation's effect, guarded by the first operation's condition.
// The conditions of the later ones are judged against the earlier writes
// of the same transaction, as if applied in order: an ETag can never match
// a write that happens inside the transaction (its ETag is new), and a
// first-write Set fails after a Set of the same key. Deleting a missing
// key without an ETag succeeds.
//
// A failed condition aborts the transaction with an error naming the
// operation's index and wrapping a *state.ETagError of kind ETagMismatch.
// Only per-operation metadata (ttlInSeconds) is read; req.Metadata is not.
func (s *Store) Multi(ctx context.Context, req *state.TransactionRequest) error {
	if req == nil {
		return fmt.Errorf("state.aws.dynamodb: transaction: nil request: %w", component.ErrInvalidArgument)
	}
	ctx, sess, end, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	if n := len(req.Operations); n > maxTransactionOps {
		return sess.errorf("transaction", "", "%w: too many operations: %d, DynamoDB allows at most %d per transaction",
			component.ErrInvalidArgument, n, maxTransactionOps)
	}
	if len(req.Operations) == 0 {
		return nil
	}

	// group is the folded operations on one key.
	type group struct {
		first int // index of the first operation, whose condition guards the write
		cond  condition
		w     write // the last operation's write
	}
	at := sess.now()
	now := at.Unix()
	var groups []*group
	byKey := make(map[string]*group, len(req.Operations))
	for i, op := range req.Operations {
		var (
			w          write
			err        error
			etag       *string
			firstWrite bool
		)
		switch op := op.(type) {
		case *state.SetRequest:
			if op == nil {
				err = fmt.Errorf("%w: nil operation", component.ErrInvalidArgument)
				break
			}
			w, err = sess.prepareSet(op, at)
			etag, firstWrite = op.ETag, op.Options.Concurrency == state.FirstWrite
		case *state.DeleteRequest:
			if op == nil {
				err = fmt.Errorf("%w: nil operation", component.ErrInvalidArgument)
				break
			}
			w, err = sess.prepareDelete(op, now)
			etag = op.ETag
		default:
			err = fmt.Errorf("%w: unsupported operation %T", component.ErrInvalidArgument, op)
		}
		if err != nil {
			return sess.errorf("transaction", "", "operation %d: %w", i, err)
		}
		g := byKey[w.key]
		if g == nil {
			g = &group{first: i, cond: w.cond, w: w}
			byKey[w.key] = g
			groups = append(groups, g)
			continue
		}
		if (etag != nil && *etag != "") || (firstWrite && !w.del && !g.w.del) {
			return sess.errorf("transaction", "", "operation %d: %w", i, state.NewETagMismatch(w.key))
		}
		g.w = w
	}

	items := make([]types.TransactWriteItem, len(groups))
	for j, g := range groups {
		if g.w.del {
			items[j].Delete = &types.Delete{
				TableName:                 aws.String(sess.cfg.table),
				Key:                       sess.keyOf(g.w.key),
				ConditionExpression:       g.cond.exprPtr(),
				ExpressionAttributeNames:  g.cond.names,
				ExpressionAttributeValues: g.cond.values,
			}
		} else {
			items[j].Put = &types.Put{
				TableName:                 aws.String(sess.cfg.table),
				Item:                      g.w.item,
				ConditionExpression:       g.cond.exprPtr(),
				ExpressionAttributeNames:  g.cond.names,
				ExpressionAttributeValues: g.cond.values,
			}
		}
	}
	_, err = sess.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	if err == nil {
		return nil
	}
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) && ctx.Err() == nil {
		// CancellationReasons line up with TransactItems; "None" marks
		// the items that were fine.
		for j, r := range tce.CancellationReasons {
			if j >= len(groups) {
				break
			}
			switch aws.ToString(r.Code) {
			case "ConditionalCheckFailed":
				return sess.errorf("transaction", "", "operation %d: %w", groups[j].first, state.NewETagMismatch(groups[j].w.key))
			case "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded":
				return sess.errorf("transaction", "", "operation %d: %s: %w: %w",
					groups[j].first, aws.ToString(r.Code), component.ErrUnavailable, err)
			case "ValidationError", "ItemCollectionSizeLimitExceeded":
				return sess.errorf("transaction", "", "operation %d: %w: %w", groups[j].first, component.ErrInvalidArgument, err)
			}
		}
	}
	return sess.fail(ctx, "transaction", "", err)
}
