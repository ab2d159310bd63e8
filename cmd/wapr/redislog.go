package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// redisLogger routes go-redis's own messages (one process-wide logger, used
// for every Redis component) into wapr's log at debug level: they repeat
// what the components report through their errors (a failed dial while
// Redis is down, a retry), and would otherwise go to stderr unstructured.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, strings.TrimSpace(fmt.Sprintf(format, v...)), "library", "go-redis")
}

// installRedisLogger makes go-redis log through log.
func installRedisLogger(log *slog.Logger) { goredis.SetLogger(redisLogger{log}) }
