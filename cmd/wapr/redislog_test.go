package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

func TestRedisLoggerWritesDebugRecords(t *testing.T) {
	var buf bytes.Buffer
	l := redisLogger{slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	l.Printf(context.Background(), "redis: connection pool: failed to dial after %d attempts: %s\n", 1, "refused")
	out := buf.String()
	for _, want := range []string{"level=DEBUG", `msg="redis: connection pool: failed to dial after 1 attempts: refused"`, "library=go-redis"} {
		if !strings.Contains(out, want) {
			t.Errorf("log %q lacks %q", out, want)
		}
	}

	buf.Reset()
	quiet := redisLogger{slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	quiet.Printf(context.Background(), "redis: retrying")
	if buf.Len() != 0 {
		t.Errorf("at info level the message still shows: %q", buf.String())
	}
}
