package wasmcomp_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wapr-dev/wapr/builtin/backendtest"
	"github.com/wapr-dev/wapr/host/component"
)

// A subscriber given up while its poll is blocked in Redis (a subscription
// that ends) loses its connection at once: the poll returns long before its
// wait is over, and Redis no longer holds a blocked read that would take the
// next message published.
func TestAbortedSubscriberLeavesRedis(t *testing.T) {
	r := backendtest.StartRedis(t)
	raw := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer raw.Close()
	for _, e := range testEngines {
		t.Run(e.name, func(t *testing.T) {
			l := newLoader(t, e)
			m := inspect(t, l, "./components-wasm/pubsub-redis")
			p, err := l.NewPubSub(m, "ps", "pubsub.redis", nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if err := p.Init(ctx, component.Metadata{Properties: map[string]string{"redisHost": r.Addr, "consumerID": "abort-" + e.name}}); err != nil {
				t.Fatal(err)
			}
			defer p.Close(ctx)
			poll, abort, closeSub, err := p.Subscriber(ctx, "abort-topic-"+e.name)
			if err != nil {
				t.Fatal(err)
			}
			defer closeSub()

			const wait = 20 * time.Second
			done := make(chan error, 1)
			go func() { done <- poll(ctx, wait) }()
			blocked := func() (bool, error) {
				list, err := raw.ClientList(ctx).Result()
				return strings.Contains(list, "cmd=xreadgroup") && strings.Contains(list, "flags=b"), err
			}
			if err := backendtest.Eventually(10*time.Second, func() error {
				if ok, err := blocked(); !ok || err != nil {
					return fmt.Errorf("no blocked XREADGROUP yet (%v)", err)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			abort()
			select {
			case err := <-done:
				if err == nil {
					t.Fatal("the poll succeeded on an aborted subscriber")
				}
				t.Logf("poll ended %v after the abort: %v", time.Since(start), err)
			case <-time.After(2 * time.Second):
				// Left alone it would run until the call timeout (5 s).
				t.Fatal("the poll still runs 2s after the abort")
			}
			if err := backendtest.Eventually(10*time.Second, func() error {
				if ok, err := blocked(); ok || err != nil {
					return fmt.Errorf("Redis still holds the blocked read (%v)", err)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		})
	}
}
