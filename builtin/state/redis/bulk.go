package redis

import (
	"context"
	"errors"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wapr-dev/wapr/host/component/state"
)

// BulkGet reads every key in one pipelined round trip and returns one item
// per request, in order: the value with its ETag and ttlExpireTime, or nil
// Data for a missing key. The result is not a snapshot: other clients' writes
// may land between two keys. A key that cannot be read (an empty key, or one
// holding another Redis type) fails its own item; a connection failure fails
// the call.
func (s *Store) BulkGet(ctx context.Context, reqs []state.GetRequest) ([]state.BulkGetItem, error) {
	c, err := s.conn()
	if err != nil {
		return nil, err
	}
	items := make([]state.BulkGetItem, len(reqs))
	reads := make([]read, len(reqs))
	queued := 0
	for i := range reqs {
		items[i].Key = reqs[i].Key
		if reqs[i].Key == "" {
			items[i].Err = s.errNoKey
		} else {
			queued++
		}
	}
	if queued == 0 {
		return items, nil
	}
	// Pipelined returns the first failed command's error; the replies are
	// inspected one by one below.
	_, _ = c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i := range reqs {
			if items[i].Err == nil {
				reads[i].queue(ctx, p, reqs[i].Key)
			}
		}
		return nil
	})
	now := time.Now()
	for i := range reqs {
		it := &items[i]
		if it.Err != nil {
			continue
		}
		if err := reads[i].err(); err != nil {
			if !isServerError(err) {
				return nil, s.wrap(ctx, "bulk get", it.Key, err)
			}
			it.Err = s.wrap(ctx, "get", it.Key, err)
			continue
		}
		if resp, ok := reads[i].response(now); ok {
			it.Data, it.ETag, it.Metadata = resp.Data, resp.ETag, resp.Metadata
		}
	}
	return items, nil
}

// BulkSet applies each request as Set would, all in one pipelined round
// trip. It is not atomic: each item is written or fails on its own, and the
// failures (a *state.ETagError per conflicting key) are joined with
// errors.Join. A connection failure fails the call, and then some items may
// have been written.
func (s *Store) BulkSet(ctx context.Context, reqs []state.SetRequest) error {
	c, err := s.conn()
	if err != nil {
		return err
	}
	ws := make([]write, 0, len(reqs))
	var errs []error
	for i := range reqs {
		w, err := s.prepareSet(&reqs[i])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ws = append(ws, w)
	}
	if err := s.applyEach(ctx, c, ws, &errs); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// BulkDelete applies each request as Delete would, all in one pipelined
// round trip. It is not atomic; failures are joined as in BulkSet.
func (s *Store) BulkDelete(ctx context.Context, reqs []state.DeleteRequest) error {
	c, err := s.conn()
	if err != nil {
		return err
	}
	ws := make([]write, 0, len(reqs))
	var errs []error
	for i := range reqs {
		w, err := s.prepareDelete(&reqs[i])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ws = append(ws, w)
	}
	if err := s.applyEach(ctx, c, ws, &errs); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// applyEach applies each write on its own, pipelined, and appends one error
// per failed write to errs. It returns an error only when the connection
// failed, since the outcome of every write is then unknown.
func (s *Store) applyEach(ctx context.Context, c *goredis.Client, ws []write, errs *[]error) error {
	if len(ws) == 0 {
		return nil
	}
	keys := make([]string, len(ws))
	args := make([][]any, len(ws))
	for i := range ws {
		keys[i] = ws[i].key
		if !ws[i].plainDelete() {
			args[i] = ws[i].appendArgs(make([]any, 0, argsPerWrite))
		}
	}
	cmds := make([]goredis.Cmder, len(ws))
	_, _ = c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i := range ws {
			if ws[i].plainDelete() {
				cmds[i] = p.Del(ctx, keys[i])
			} else {
				cmds[i] = writeScript.EvalSha(ctx, p, keys[i:i+1], args[i]...)
			}
		}
		return nil
	})

	// A server that lost its script cache (restarted, SCRIPT FLUSH) answers
	// NOSCRIPT without running anything: send those again with the source.
	var again []int
	for i, cmd := range cmds {
		if goredis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
			again = append(again, i)
		}
	}
	if len(again) > 0 {
		_, _ = c.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for _, i := range again {
				cmds[i] = writeScript.Eval(ctx, p, keys[i:i+1], args[i]...)
			}
			return nil
		})
	}

	for i, cmd := range cmds {
		w := &ws[i]
		err := cmd.Err()
		if err != nil && !isServerError(err) {
			return s.wrap(ctx, "bulk "+opName(w), w.key, err)
		}
		if err != nil {
			*errs = append(*errs, s.wrap(ctx, opName(w), w.key, err))
			continue
		}
		if sc, ok := cmd.(*goredis.Cmd); ok {
			if n, _ := sc.Int(); n != 0 {
				*errs = append(*errs, state.NewETagMismatch(w.key))
			}
		}
	}
	return nil
}
