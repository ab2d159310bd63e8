//go:build !wasip1

package log

import (
	"context"
	"log/slog"
	"os"
)

// native is the logger of native builds: text lines on stderr, every level.
var native = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))

func enabled(level int32) bool {
	return native.Enabled(context.Background(), slog.Level(level))
}

func write(level int32, msg string, kv []any) {
	native.Log(context.Background(), slog.Level(level), msg, kv...)
}
