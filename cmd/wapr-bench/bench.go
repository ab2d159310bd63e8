package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/valyala/fasthttp"
)

type bench struct {
	c      config
	client *fasthttp.Client
	value  string
}

func newBench(c config) *bench {
	return &bench{
		c:      c,
		client: &fasthttp.Client{MaxConnsPerHost: c.concurrency * 2, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second},
		value:  `"` + strings.Repeat("v", max(c.valueSize-2, 0)) + `"`,
	}
}

// do sends one request and checks the status.
func (b *bench) do(method, path, contentType string, body []byte, want int) error {
	req := fasthttp.AcquireRequest()
	res := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(res)
	req.Header.SetMethod(method)
	req.SetRequestURI(b.c.sidecar + path)
	if contentType != "" {
		req.Header.SetContentType(contentType)
	}
	req.SetBody(body)
	if err := b.client.Do(req, res); err != nil {
		return err
	}
	if res.StatusCode() != want {
		return fmt.Errorf("%s %s: status %d: %s", method, path, res.StatusCode(), res.Body())
	}
	return nil
}

func (b *bench) waitHealthy(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		err := b.do("GET", "/v1.0/healthz/outbound", "", nil, 204)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the sidecar at %s is not healthy: %v", b.c.sidecar, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// rawRedis measures a go-redis client on the same Redis: the baseline.
func (b *bench) rawRedis(ctx context.Context, name string, set bool) result {
	rc := redis.NewClient(&redis.Options{Addr: b.c.redisAddr, PoolSize: b.c.concurrency})
	defer rc.Close()
	keys := b.keys("raw")
	for _, k := range keys {
		rc.Set(ctx, k, b.value, 0)
	}
	return drive(name, b.c, func(w, _ int) error {
		if set {
			return rc.Set(ctx, keys[w], b.value, 0).Err()
		}
		return rc.Get(ctx, keys[w]).Err()
	})
}

func (b *bench) keys(prefix string) []string {
	keys := make([]string, b.c.concurrency)
	for i := range keys {
		keys[i] = "wapr-bench-" + prefix + "-" + strconv.Itoa(i)
	}
	return keys
}

// stateGet reads from store, one key per client.
func (b *bench) stateGet(name, store string) result {
	keys := b.keys("state")
	for _, k := range keys {
		if err := b.do("POST", "/v1.0/state/"+store, "application/json", []byte(`[{"key":"`+k+`","value":`+b.value+`}]`), 204); err != nil {
			return result{Name: name, Extra: "seeding failed: " + err.Error()}
		}
	}
	return b.driveCPU(name, func(w, _ int) error {
		return b.do("GET", "/v1.0/state/"+store+"/"+keys[w], "", nil, 200)
	})
}

// stateSave writes to store, one key per client.
func (b *bench) stateSave(name, store string) result {
	keys := b.keys("state")
	bodies := make([][]byte, len(keys))
	for i, k := range keys {
		bodies[i] = []byte(`[{"key":"` + k + `","value":` + b.value + `}]`)
	}
	return b.driveCPU(name, func(w, _ int) error {
		return b.do("POST", "/v1.0/state/"+store, "application/json", bodies[w], 204)
	})
}

// publish publishes JSON events carrying their send time; onSent, when set,
// counts each accepted one.
// The plain publish scenario (run 0) uses a topic nobody subscribes to, so
// it leaves no backlog for the delivery scenario.
func (b *bench) publish(name string, sent *atomic.Int64, run int64) result {
	topic := b.c.topic
	if run == 0 {
		topic += "-nosub"
	}
	path := "/v1.0/publish/" + b.c.pubsubName + "/" + topic
	prefix := `{"r":` + strconv.FormatInt(run, 10) + `,"w":`
	return drive(name, b.c, func(w, n int) error {
		body := prefix + strconv.Itoa(w) + `,"n":` + strconv.Itoa(n) + `,"t":` + strconv.FormatInt(time.Now().UnixNano(), 10) + `}`
		err := b.do("POST", path, "application/json", []byte(body), 204)
		if err == nil && sent != nil {
			sent.Add(1)
		}
		return err
	})
}

// delivery publishes at full speed while the app side counts deliveries,
// then waits (up to 60 s) for the backlog, and reports the delivery rate,
// end-to-end latency and anything lost.
func (b *bench) delivery(a *app) result {
	if !a.subscribed.Load() {
		return result{Name: "delivery", Extra: "the sidecar never asked this app for its subscriptions (start wapr-bench before the sidecar, with --app-port " + strconv.Itoa(b.c.appPort) + ")"}
	}
	run := a.reset()
	var sent atomic.Int64
	start := time.Now()
	pub := b.publish("delivery publish", &sent, run)
	deadline := time.Now().Add(60 * time.Second)
	for a.unique() < sent.Load() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := a.lastAt().Sub(start)
	got := a.unique()
	r := result{Name: "delivery", Ops: got, PerSecond: float64(got) / elapsed.Seconds(), Published: pub.PerSecond}
	r.P50, r.P90, r.P99 = a.lat.percentiles()
	r.Extra = fmt.Sprintf("published %d at %.0f/s, delivered %d, lost %d, duplicates %d", sent.Load(), pub.PerSecond, got, sent.Load()-got, a.duplicates.Load())
	return r
}
