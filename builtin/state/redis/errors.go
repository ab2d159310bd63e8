package redis

import (
	"context"
	"fmt"

	"github.com/wapr-dev/wapr/builtin/internal/redisconn"
)

// wrap turns a go-redis error from operation op on key ("" for none) into
// the component's error (see redisconn.Wrap).
func (s *Store) wrap(ctx context.Context, op, key string, err error) error {
	where := s.prefix + ": " + op
	if key != "" {
		where += fmt.Sprintf(" %q", key)
	}
	return redisconn.Wrap(ctx, where, s.cfg.conn.Addr, s.closed.Load(), err)
}

// isServerError reports whether err is an error reply from Redis.
func isServerError(err error) bool { return redisconn.IsServerError(err) }
