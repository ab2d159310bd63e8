package dynamodb

import (
	"context"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/state"
)

// DynamoDB's limits per batch call.
const (
	maxBatchGet   = 100
	maxBatchWrite = 25
	// maxBatchAttempts bounds how often a batch call is repeated for the
	// items DynamoDB left unprocessed (throttling) before giving up.
	maxBatchAttempts = 8
)

// BulkGet returns one item per request, in order, read with BatchGetItem:
// the value, or nil Data for a missing or expired key. A request with an
// empty key or a bad consistency option gets an error of its own. The
// whole call fails only when DynamoDB cannot be used.
func (s *Store) BulkGet(ctx context.Context, reqs []state.GetRequest) ([]state.BulkGetItem, error) {
	ctx, sess, end, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer end()

	items := make([]state.BulkGetItem, len(reqs))
	var keys []string
	seen := make(map[string]bool, len(reqs))
	strong := false
	for i := range reqs {
		r := &reqs[i]
		items[i].Key = r.Key
		if r.Key == "" {
			items[i].Err = sess.errorf("bulk get", "", "%w: empty key", component.ErrInvalidArgument)
			continue
		}
		st, err := consistency(r.Options.Consistency)
		if err != nil {
			items[i].Err = sess.errorf("bulk get", r.Key, "%w", err)
			continue
		}
		strong = strong || st // one strong request makes the batch strong
		if !seen[r.Key] {     // a key twice in one batch is a ValidationException
			seen[r.Key] = true
			keys = append(keys, r.Key)
		}
	}

	found := make(map[string]map[string]types.AttributeValue, len(keys))
	for start := 0; start < len(keys); start += maxBatchGet {
		chunk := keys[start:min(start+maxBatchGet, len(keys))]
		ka := types.KeysAndAttributes{Keys: make([]map[string]types.AttributeValue, len(chunk)), ConsistentRead: aws.Bool(strong)}
		for i, k := range chunk {
			ka.Keys[i] = sess.keyOf(k)
		}
		pending := map[string]types.KeysAndAttributes{sess.cfg.table: ka}
		for attempt := 0; len(pending) > 0; attempt++ {
			if err := sess.backoff(ctx, "bulk get", attempt); err != nil {
				return nil, err
			}
			out, err := sess.client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: pending})
			if err != nil {
				return nil, sess.fail(ctx, "bulk get", "", err)
			}
			for _, it := range out.Responses[sess.cfg.table] {
				if k, ok := it[sess.cfg.partitionKey].(*types.AttributeValueMemberS); ok {
					found[k.Value] = it
				}
			}
			pending = out.UnprocessedKeys
		}
	}

	now := sess.now().Unix()
	for i := range items {
		it := &items[i]
		if it.Err != nil {
			continue
		}
		v, ok, err := sess.decode(found[it.Key], now)
		switch {
		case err != nil:
			it.Err = sess.errorf("bulk get", it.Key, "%w", err)
		case ok:
			it.Data, it.ETag, it.Metadata = v.data, v.etag, v.metadata()
		}
	}
	return items, nil
}

// BulkSet applies each request as Set would, in order. Unconditional
// writes go out in BatchWriteItem calls, conditional ones one by one. It is
// not atomic: per-key failures are joined with errors.Join and the other
// items are written. It stops early, returning that error, when DynamoDB
// cannot be used.
func (s *Store) BulkSet(ctx context.Context, reqs []state.SetRequest) error {
	ctx, sess, end, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	at := sess.now()
	var errs []error
	ws := make([]write, 0, len(reqs))
	for i := range reqs {
		w, err := sess.prepareSet(&reqs[i], at)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ws = append(ws, w)
	}
	return sess.writeMany(ctx, "bulk set", ws, errs)
}

// BulkDelete applies each request as Delete would, in order, batching the
// unconditional ones like BulkSet. It is not atomic: per-key failures are
// joined with errors.Join and the other keys are deleted.
func (s *Store) BulkDelete(ctx context.Context, reqs []state.DeleteRequest) error {
	ctx, sess, end, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	now := sess.now().Unix()
	var errs []error
	ws := make([]write, 0, len(reqs))
	for i := range reqs {
		w, err := sess.prepareDelete(&reqs[i], now)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ws = append(ws, w)
	}
	return sess.writeMany(ctx, "bulk delete", ws, errs)
}

// writeMany sends ws in order: runs of unconditional writes in batches
// (never one key twice in a batch, so the later write of a key lands
// later), conditional writes alone. errs holds the failures found so far;
// the result joins them with the new ones.
func (s *session) writeMany(ctx context.Context, op string, ws []write, errs []error) error {
	var batch []write
	inBatch := make(map[string]bool, maxBatchWrite)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := s.batchWrite(ctx, op, batch)
		if err != nil && !fatal(ctx, err) {
			// DynamoDB refused the batch as a whole (say, one item is over
			// 400 KB): write its items one by one so each failure names
			// its key and the rest land.
			err = nil
			for _, w := range batch {
				if e := s.writeOne(ctx, w); e != nil {
					if fatal(ctx, e) {
						err = e
						break
					}
					errs = append(errs, e)
				}
			}
		}
		batch = batch[:0]
		clear(inBatch)
		return err
	}
	for _, w := range ws {
		if w.cond.conditional() {
			if err := flush(); err != nil {
				return errors.Join(append(errs, err)...)
			}
			if err := s.writeOne(ctx, w); err != nil {
				if fatal(ctx, err) {
					return errors.Join(append(errs, err)...)
				}
				errs = append(errs, err)
			}
			continue
		}
		if inBatch[w.key] || len(batch) == maxBatchWrite {
			if err := flush(); err != nil {
				return errors.Join(append(errs, err)...)
			}
		}
		batch = append(batch, w)
		inBatch[w.key] = true
	}
	if err := flush(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// batchWrite sends unconditional writes with BatchWriteItem, repeating the
// call for the items DynamoDB left unprocessed.
func (s *session) batchWrite(ctx context.Context, op string, batch []write) error {
	reqs := make([]types.WriteRequest, len(batch))
	for i, w := range batch {
		if w.del {
			reqs[i].DeleteRequest = &types.DeleteRequest{Key: s.keyOf(w.key)}
		} else {
			reqs[i].PutRequest = &types.PutRequest{Item: w.item}
		}
	}
	pending := map[string][]types.WriteRequest{s.cfg.table: reqs}
	for attempt := 0; len(pending) > 0; attempt++ {
		if err := s.backoff(ctx, op, attempt); err != nil {
			return err
		}
		out, err := s.client.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending})
		if err != nil {
			return s.fail(ctx, op, "", err)
		}
		pending = out.UnprocessedItems
	}
	return nil
}

// backoff waits before attempt (0 = the first, which does not wait) of a
// batch call whose previous attempt left items unprocessed. After
// maxBatchAttempts it gives up with an error wrapping
// component.ErrUnavailable.
func (s *session) backoff(ctx context.Context, op string, attempt int) error {
	if attempt == 0 {
		return nil
	}
	if attempt >= maxBatchAttempts {
		return s.errorf(op, "", "DynamoDB left items unprocessed after %d attempts (throttled): %w", attempt, component.ErrUnavailable)
	}
	t := time.NewTimer(min(25*time.Millisecond<<attempt, 2*time.Second))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return s.errorf(op, "", "%w", context.Cause(ctx))
	}
}

// fatal reports whether err ends a bulk operation: the backend is
// unavailable, the store closed or the caller gave up.
func fatal(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, component.ErrUnavailable) || errors.Is(err, component.ErrClosed)
}
