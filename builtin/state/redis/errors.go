package redis

import (
	"context"
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wapr-dev/wapr/host/component"
)

// wrap turns a go-redis error from operation op on key ("" for none) into
// the component's error: it names the component and, for connection
// problems, the Redis address, and wraps the contract's sentinel.
func (s *Store) wrap(ctx context.Context, op, key string, err error) error {
	where := s.prefix + ": " + op
	if key != "" {
		where += fmt.Sprintf(" %q", key)
	}
	switch {
	case ctx.Err() != nil:
		// The caller's deadline or cancellation, whatever the socket said.
		return fmt.Errorf("%s: %w", where, ctx.Err())
	case s.closed.Load() && !isServerError(err):
		// Close pulled the connection from under the request.
		return fmt.Errorf("%s: %w", where, component.ErrClosed)
	case goredis.IsAuthError(err):
		return fmt.Errorf("%s: redis at %s rejected the credentials (check redisUsername and redisPassword): %w", where, s.cfg.addr, err)
	case isServerError(err) && !transientServerError(err):
		return fmt.Errorf("%s: redis at %s: %w", where, s.cfg.addr, err)
	default:
		// Anything that is not a reply from the server is a transport
		// failure: refused, reset, timed out, pool exhausted.
		return fmt.Errorf("%s: %w: redis at %s: %w", where, component.ErrUnavailable, s.cfg.addr, err)
	}
}

// isServerError reports whether err is an error reply from Redis.
func isServerError(err error) bool {
	var re goredis.Error
	return errors.As(err, &re)
}

// transientServerError reports error replies that mean the server cannot
// serve right now (loading its data set, no master, busy script) rather
// than that the request is wrong.
func transientServerError(err error) bool {
	for _, p := range []string{"LOADING", "MASTERDOWN", "BUSY ", "TRYAGAIN", "CLUSTERDOWN"} {
		if goredis.HasErrorPrefix(err, p) {
			return true
		}
	}
	return goredis.IsMaxClientsError(err)
}
