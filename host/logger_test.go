package host_test

import (
	"log/slog"
	"testing"
)

// newTestLogger returns a logger writing to t.Log, so output shows only for
// failing tests (or with -v).
func newTestLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}
