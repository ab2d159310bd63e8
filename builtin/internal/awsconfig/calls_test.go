package awsconfig

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/wapr-dev/wapr/host/component"
)

func TestCallsCloseWaitsForCalls(t *testing.T) {
	var c Calls
	ctx, end, err := c.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		first bool
		err   error
	}
	done := make(chan result, 1)
	go func() {
		first, err := c.Close(context.Background())
		done <- result{first, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("Close returned %+v with a call in flight", r)
	default:
	}
	end()
	if r := <-done; !r.first || r.err != nil {
		t.Errorf("Close = %+v, want first and no error", r)
	}
	if ctx.Err() == nil {
		t.Error("the call's context is still live after end")
	}
	if _, _, err := c.Begin(context.Background()); !errors.Is(err, component.ErrClosed) {
		t.Errorf("Begin after Close: err = %v, want ErrClosed", err)
	}
	if first, err := c.Close(context.Background()); first || err != nil {
		t.Errorf("second Close = %v, %v; want false, nil", first, err)
	}
}

func TestCallsCloseAbortsAtDeadline(t *testing.T) {
	var c Calls
	ctx, end, err := c.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer end()
	closeCtx, cancel := context.WithCancel(context.Background())
	cancel()
	first, err := c.Close(closeCtx)
	if !first || !errors.Is(err, context.Canceled) {
		t.Errorf("Close = %v, %v; want first and context.Canceled", first, err)
	}
	<-ctx.Done()
	if cause := context.Cause(ctx); !errors.Is(cause, component.ErrClosed) {
		t.Errorf("aborted call's cause = %v, want ErrClosed", cause)
	}
}

func TestCallsConcurrent(t *testing.T) {
	var c Calls
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for range 50 {
				_, end, err := c.Begin(context.Background())
				if err != nil {
					if !errors.Is(err, component.ErrClosed) {
						t.Errorf("Begin: %v", err)
					}
					return
				}
				end()
			}
		})
	}
	if _, err := c.Close(context.Background()); err != nil {
		t.Errorf("Close: %v", err)
	}
	wg.Wait()
}
