package main

import (
	"encoding/json"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// app is the app side of the delivery scenario.
type app struct {
	c          config
	subscribed atomic.Bool
	run        atomic.Int64 // deliveries of other runs are not counted
	mu         sync.Mutex
	topic      string // subscribed to; default c.topic
	seen       map[string]struct{}
	last       time.Time
	duplicates atomic.Int64
	lat        latencies
}

func newApp(c config) *app { return &app{c: c, topic: c.topic, seen: map[string]struct{}{}} }

// setTopic makes topic the one the app subscribes to, from the next time
// a sidecar asks.
func (a *app) setTopic(topic string) {
	a.mu.Lock()
	a.topic = topic
	a.mu.Unlock()
	a.subscribed.Store(false)
}

// reset starts a new run and returns its id.
func (a *app) reset() int64 {
	run := time.Now().UnixNano()
	a.run.Store(run)
	a.mu.Lock()
	a.seen = map[string]struct{}{}
	a.mu.Unlock()
	a.duplicates.Store(0)
	a.lat.reset()
	return run
}

func (a *app) unique() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return int64(len(a.seen))
}

func (a *app) lastAt() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last
}

func (a *app) handle(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Path()) {
	case "/dapr/subscribe":
		a.subscribed.Store(true)
		ctx.SetContentType("application/json")
		a.mu.Lock()
		topic := a.topic
		a.mu.Unlock()
		b, _ := json.Marshal([]map[string]string{{"pubsubname": a.c.pubsubName, "topic": topic, "route": "/bench"}})
		ctx.SetBody(b)
	case "/bench":
		var ev struct {
			Data struct {
				R    int64
				W, N int
				T    int64
			} `json:"data"`
		}
		if json.Unmarshal(ctx.PostBody(), &ev) == nil && ev.Data.R == a.run.Load() {
			id := strconv.Itoa(ev.Data.W) + "/" + strconv.Itoa(ev.Data.N)
			now := time.Now()
			a.mu.Lock()
			if _, dup := a.seen[id]; dup {
				a.duplicates.Add(1)
			} else {
				a.seen[id] = struct{}{}
			}
			a.last = now
			a.mu.Unlock()
			a.lat.add([]time.Duration{now.Sub(time.Unix(0, ev.Data.T))})
		}
		ctx.SetStatusCode(200)
	default:
		ctx.SetStatusCode(404)
	}
}
