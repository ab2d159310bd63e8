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
	if err := s.ready(); err != nil {
		return nil, err
	}
	items := make([]state.BulkGetItem, len(reqs))
	reads := make([]read, len(reqs))
	cmds := make([]goredis.Cmder, 0, 2*len(reqs))
	for i := range reqs {
		items[i].Key = reqs[i].Key
		if reqs[i].Key == "" {
			items[i].Err = s.errNoKey
			continue
		}
		reads[i] = newRead(ctx, reqs[i].Key)
		cmds = append(cmds, reads[i].fields, reads[i].ttl)
	}
	if len(cmds) == 0 {
		return items, nil
	}
	// send returns the first failed command's error; the replies are
	// inspected one by one below, unless ctx ended or the store closed.
	if err := s.send(ctx, cmds...); unanswered(ctx, err) {
		return nil, s.wrap(ctx, "bulk get", "", err)
	}
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
	if err := s.ready(); err != nil {
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
	if err := s.applyEach(ctx, ws, &errs); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// BulkDelete applies each request as Delete would, all in one pipelined
// round trip. It is not atomic; failures are joined as in BulkSet.
func (s *Store) BulkDelete(ctx context.Context, reqs []state.DeleteRequest) error {
	if err := s.ready(); err != nil {
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
	if err := s.applyEach(ctx, ws, &errs); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// applyEach applies each write on its own, in one round trip, and appends
// one error per failed write to errs. It returns an error only when the
// connection failed, since the outcome of every write is then unknown.
func (s *Store) applyEach(ctx context.Context, ws []write, errs *[]error) error {
	if len(ws) == 0 {
		return nil
	}
	args := make([][]any, len(ws))
	cmds := make([]goredis.Cmder, len(ws))
	for i := range ws {
		w := &ws[i]
		if w.plainDelete() {
			cmds[i] = goredis.NewIntCmd(ctx, "del", w.key)
			continue
		}
		args[i] = w.appendArgs(ctx, append(make([]any, 0, 4+argsPerWrite), "evalsha", argWriteScriptHash, 1, w.key))
		cmds[i] = goredis.NewCmd(ctx, args[i]...)
	}
	if err := s.send(ctx, cmds...); unanswered(ctx, err) {
		return s.wrap(ctx, "bulk "+opName(&ws[0]), "", err)
	}

	// Writes that met NOSCRIPT ran nothing: send them again with the source.
	var again []goredis.Cmder
	var which []int
	for i, cmd := range cmds {
		if isNoScript(cmd.Err()) {
			cmds[i] = evalInstead(ctx, args[i])
			again = append(again, cmds[i])
			which = append(which, i)
		}
	}
	if len(again) > 0 {
		if err := s.send(ctx, again...); unanswered(ctx, err) {
			return s.wrap(ctx, "bulk "+opName(&ws[which[0]]), "", err)
		}
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
