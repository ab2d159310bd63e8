package api

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestReadTopicOutcome(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		want   TopicOutcome
	}{
		{200, "", TopicSuccess},
		{204, "", TopicSuccess},
		{200, "ok", TopicSuccess},
		{200, `{"status":"SUCCESS"}`, TopicSuccess},
		{200, ` {"status":"success"} `, TopicSuccess},
		{200, `{"other":1}`, TopicSuccess},
		{200, `{"status":""}`, TopicSuccess},
		{200, `{"status":"DROP"}`, TopicDrop},
		{200, `{"status":"drop"}`, TopicDrop},
		{200, `{"status":"RETRY"}`, TopicRetry},
		{200, `{"status":"LATER"}`, TopicRetry},
		{200, `{"status":`, TopicSuccess},
		{404, `{"status":"SUCCESS"}`, TopicDrop},
		{500, "", TopicRetry},
		{302, "", TopicRetry},
		{429, `{"status":"SUCCESS"}`, TopicRetry},
	} {
		if got := ReadTopicOutcome(&AppResponse{Status: tc.status, Body: []byte(tc.body)}); got != tc.want {
			t.Errorf("%d %q: %d, want %d", tc.status, tc.body, got, tc.want)
		}
	}
}

// blockingApp answers every call once release is closed, telling entered
// when a call reaches it.
type blockingApp struct{ entered, release chan struct{} }

func (b *blockingApp) Call(ctx context.Context, _ *AppRequest) (*AppResponse, error) {
	b.entered <- struct{}{}
	select {
	case <-b.release:
		return &AppResponse{Status: 200}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// unhealthy is a HealthGate that never turns healthy.
type unhealthy struct{}

func (unhealthy) Healthy() bool { return false }
func (unhealthy) WaitHealthy(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

// TestWaitContext: a call waiting for a slot of --app-max-concurrency, or
// for the app to be healthy, gives up when its wait context is done, while
// the call already at the app goes on.
func TestWaitContext(t *testing.T) {
	b := &blockingApp{entered: make(chan struct{}, 2), release: make(chan struct{})}
	app := LimitApp(b, 1)
	first := make(chan error, 1)
	go func() {
		_, err := app.Call(context.Background(), &AppRequest{})
		first <- err
	}()
	<-b.entered
	for name, app := range map[string]AppChannel{"slot": app, "health": GateApp(b, unhealthy{})} {
		wait, stop := context.WithCancel(context.Background())
		second := make(chan error, 1)
		go func() {
			_, err := app.Call(WithWaitContext(context.Background(), wait), &AppRequest{Call: AppCallTopicEvent})
			second <- err
		}()
		stop()
		select {
		case err := <-second:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s: the waiting call ended with %v; want context.Canceled", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the waiting call did not give up with its wait context", name)
		}
	}
	close(b.release)
	if err := <-first; err != nil {
		t.Fatalf("the call at the app: %v", err)
	}
	if len(b.entered) != 0 {
		t.Fatal("a waiting call reached the app")
	}
}
