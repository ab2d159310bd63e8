package redis

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/configuration"
)

const (
	// idleCheck is how long a subscription's connection may stay silent
	// before it is probed with PING.
	idleCheck = 30 * time.Second
	// pongTimeout is how long the answer to that PING may take before the
	// connection is given up and dialled again.
	pongTimeout = 5 * time.Second

	// Back-off between failed reads, while Redis is unreachable.
	retryInitial = 100 * time.Millisecond
	retryMax     = 2 * time.Second
)

// notifyKey is the Redis setting that turns keyspace events on.
const notifyKey = "notify-keyspace-events"

// neededEvents are the notify-keyspace-events classes a subscription needs,
// Dapr's set: K keyspace channels, g generic events (del, expire, rename…),
// $ string events, x expired, e evicted.
const neededEvents = "Kg$xe"

// watchedEvents are the keyspace events that can change a string item or
// remove a key (or overwrite it with another type). Others (hset, lpush, …
// when the operator turned more classes on) are ignored, so a subscription
// sees what it would see with Dapr's classes alone.
var watchedEvents = map[string]bool{
	"set": true, "setrange": true, "incrby": true, "incrbyfloat": true, "append": true,
	"del": true, "expire": true, "persist": true, "rename_from": true, "rename_to": true,
	"move_from": true, "move_to": true, "copy_to": true, "restore": true, "sortstore": true,
	"expired": true, "evicted": true,
}

// States of a subscription's handler, for the hand-over between its
// goroutine and Unsubscribe or Close.
const (
	handlerIdle int32 = iota
	handlerCalling
	handlerStopped
)

// subscription is one Subscribe: its connection and the goroutine that
// reads from it.
type subscription struct {
	id     string
	ps     *goredis.PubSub
	h      configuration.UpdateHandler
	cancel context.CancelFunc // ends the goroutine's context
	done   chan struct{}      // closed when the goroutine has returned

	// state is handlerIdle, handlerCalling while h runs, or handlerStopped
	// once the subscription ends: the goroutine moves idle→calling→idle and
	// gives up when a move fails, so h is never called after halt.
	state atomic.Int32
	// failures counts reads that failed (Redis unreachable, connection
	// lost); for tests.
	failures atomic.Int64
}

// halt stops the subscription: no call of h starts after it, the
// goroutine's context ends and the connection is closed.
func (sub *subscription) halt() {
	sub.state.Store(handlerStopped)
	sub.cancel()
	_ = sub.ps.Close()
}

// wait waits for the goroutine to return, until ctx ends.
func (sub *subscription) wait(ctx context.Context) error {
	select {
	case <-sub.done: // ahead of an ended ctx
		return nil
	default:
	}
	select {
	case <-sub.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Subscribe watches req.Keys (every key when empty) and calls h with each
// change until Unsubscribe or Close. It returns once Redis has confirmed
// the subscription, so changes made after it returns are reported. ctx
// bounds only the subscribing, not the subscription. The id is a random
// UUID.
func (s *Store) Subscribe(ctx context.Context, req *configuration.SubscribeRequest, h configuration.UpdateHandler) (string, error) {
	c, err := s.ready()
	if err != nil {
		return "", err
	}
	if h == nil {
		return "", fmt.Errorf("%s: subscribe: %w: no handler", s.prefix, component.ErrInvalidArgument)
	}
	id, err := newID()
	if err != nil {
		return "", fmt.Errorf("%s: subscribe: %w", s.prefix, err)
	}

	// One confirmation comes back per channel, so the keys are made unique.
	var keys []string
	if req != nil {
		keys = slices.Clone(req.Keys)
		slices.Sort(keys)
		keys = slices.Compact(keys)
	}
	ps := c.Subscribe(ctx) // no channel yet: nothing is sent
	if len(keys) == 0 {
		err = ps.PSubscribe(ctx, s.channelPrefix+"*")
	} else {
		channels := make([]string, len(keys))
		for i, k := range keys {
			channels[i] = s.channelPrefix + k
		}
		err = ps.Subscribe(ctx, channels...)
	}
	var pending []*goredis.Message
	if err == nil {
		pending, err = s.confirm(ctx, ps, max(len(keys), 1))
	}
	if err != nil {
		_ = ps.Close()
		return "", s.wrap(ctx, "subscribe", "", err)
	}
	s.ensureNotificationsQuietly(ctx, c)

	subCtx, cancel := context.WithCancel(context.Background())
	sub := &subscription{id: id, ps: ps, h: h, cancel: cancel, done: make(chan struct{})}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.subs == nil { // closed meanwhile
		cancel()
		_ = ps.Close()
		return "", fmt.Errorf("%s: subscribe: %w", s.prefix, component.ErrClosed)
	}
	s.subs[id] = sub
	go s.run(subCtx, c, sub, pending)
	return id, nil
}

// confirm reads until Redis has confirmed want channels or patterns, and
// returns the notifications that arrived meanwhile, for the goroutine to
// deliver first. Each read is bounded by readTimeout, as a command is.
func (s *Store) confirm(ctx context.Context, ps *goredis.PubSub, want int) ([]*goredis.Message, error) {
	timeout := max(s.cfg.ReadTimeout, 0)
	var pending []*goredis.Message
	for got := 0; got < want; {
		msg, err := ps.ReceiveTimeout(ctx, timeout)
		if err != nil {
			return nil, err
		}
		switch m := msg.(type) {
		case *goredis.Subscription:
			got++
		case *goredis.Message:
			pending = append(pending, m)
		}
	}
	return pending, nil
}

// Unsubscribe stops the subscription id and waits, until ctx ends, for its
// goroutine to return. h is not called again once Unsubscribe returns;
// when ctx ends while a call of h is still running, the error wraps ctx's
// error (the subscription is gone all the same). An unknown id gives an
// error wrapping component.ErrNotFound, a closed store one wrapping
// component.ErrClosed.
func (s *Store) Unsubscribe(ctx context.Context, id string) error {
	s.mu.Lock()
	sub := s.subs[id]
	delete(s.subs, id)
	closed := s.subs == nil
	s.mu.Unlock()
	switch {
	case closed:
		return fmt.Errorf("%s: unsubscribe %q: %w", s.prefix, id, component.ErrClosed)
	case sub == nil:
		return fmt.Errorf("%s: unsubscribe %q: %w: no such subscription", s.prefix, id, component.ErrNotFound)
	}
	sub.halt()
	if err := sub.wait(ctx); err != nil {
		return fmt.Errorf("%s: unsubscribe %q: its handler was still running: %w", s.prefix, id, err)
	}
	return nil
}

// run reads sub's notifications until ctx ends, delivering pending first.
func (s *Store) run(ctx context.Context, c *goredis.Client, sub *subscription, pending []*goredis.Message) {
	defer close(sub.done)
	defer sub.ps.Close()
	for _, m := range pending {
		if !s.deliver(ctx, c, sub, m) {
			return
		}
	}
	var (
		delay  = retryInitial
		timer  *time.Timer
		pinged bool // a PING was sent after a silence; its answer is due
	)
	for {
		var msg any
		var err error
		if pinged {
			// A deadline from the context makes go-redis treat a missing
			// answer as a dead connection and drop it.
			pctx, cancel := context.WithTimeout(ctx, pongTimeout)
			msg, err = sub.ps.Receive(pctx)
			cancel()
		} else {
			msg, err = sub.ps.ReceiveTimeout(ctx, idleCheck)
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if !pinged && isTimeout(err) {
				if sub.ps.Ping(ctx) == nil {
					pinged = true
					continue
				}
			}
			// Redis is unreachable, or the connection broke: go-redis
			// dials again on the next read; back off so a Redis that is
			// down is not hammered.
			pinged = false
			sub.failures.Add(1)
			if timer == nil {
				timer = time.NewTimer(delay)
				defer timer.Stop()
			} else {
				timer.Reset(delay)
			}
			delay = min(2*delay, retryMax)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
			continue
		}
		pinged = false
		delay = retryInitial
		switch m := msg.(type) {
		case *goredis.Subscription:
			// The first confirmation on a connection: a new one, perhaps
			// to a Redis that restarted and forgot the events setting.
			if m.Count == 1 {
				s.ensureNotificationsQuietly(ctx, c)
			}
		case *goredis.Message:
			if !s.deliver(ctx, c, sub, m) {
				return
			}
		}
	}
}

// deliver reads the key m is about and calls the handler with it. It
// reports false when the subscription has stopped.
func (s *Store) deliver(ctx context.Context, c *goredis.Client, sub *subscription, m *goredis.Message) bool {
	key, ok := strings.CutPrefix(m.Channel, s.channelPrefix)
	if !ok || !watchedEvents[m.Payload] {
		return true
	}
	item, err := s.read(ctx, c, key)
	if err != nil {
		if ctx.Err() != nil {
			return false
		}
		slog.Warn(s.prefix+": cannot read a changed configuration item; the change is not reported",
			"subscription", sub.id, "key", key, "event", m.Payload, "error", s.wrap(ctx, "get", key, err))
		return true
	}
	if !sub.state.CompareAndSwap(handlerIdle, handlerCalling) {
		return false
	}
	s.call(ctx, sub, &configuration.Update{ID: sub.id, Items: map[string]*configuration.Item{key: item}})
	return sub.state.CompareAndSwap(handlerCalling, handlerIdle)
}

// call runs the handler once. The host logs the handler's errors; they do
// not end the subscription, and neither does a panic, which is logged here.
func (s *Store) call(ctx context.Context, sub *subscription, u *configuration.Update) {
	defer func() {
		if r := recover(); r != nil {
			slog.Error(s.prefix+": subscription handler panicked", "subscription", sub.id, "panic", r)
		}
	}()
	_ = sub.h(ctx, u)
}

// read returns key's item, or an empty one when the key is gone, holds
// another type or an empty value: what Dapr reports for a deletion.
func (s *Store) read(ctx context.Context, c *goredis.Client, key string) (*configuration.Item, error) {
	raw, err := c.Get(ctx, key).Result()
	switch {
	case errors.Is(err, goredis.Nil), goredis.HasErrorPrefix(err, "WRONGTYPE"):
		return &configuration.Item{}, nil
	case err != nil:
		return nil, err
	}
	if item := parseItem(raw); item != nil {
		return item, nil
	}
	return &configuration.Item{}, nil
}

// ensureNotifications adds to Redis's notify-keyspace-events the classes of
// neededEvents it lacks, keeping the others; it writes nothing when none
// is missing.
func ensureNotifications(ctx context.Context, c goredis.Cmdable) error {
	cur, err := c.ConfigGet(ctx, notifyKey).Result()
	if err != nil {
		return err
	}
	add := missingEvents(cur[notifyKey])
	if add == "" {
		return nil
	}
	return c.ConfigSet(ctx, notifyKey, cur[notifyKey]+add).Err()
}

// ensureNotificationsQuietly is ensureNotifications where a failure is not
// the caller's: Init has warned about a refused CONFIG, and a lost
// connection shows on the subscription's next read.
func (s *Store) ensureNotificationsQuietly(ctx context.Context, c *goredis.Client) {
	if err := ensureNotifications(ctx, c); err != nil && ctx.Err() == nil {
		slog.Debug(s.prefix+": cannot check keyspace notifications", "address", s.cfg.Addr, "error", err)
	}
}

// missingEvents returns the classes of neededEvents that flags, a value of
// notify-keyspace-events, lacks. "A" stands for g$lshzxetd.
func missingEvents(flags string) string {
	var add []byte
	for _, c := range []byte(neededEvents) {
		if strings.IndexByte(flags, c) >= 0 || (c != 'K' && strings.IndexByte(flags, 'A') >= 0) {
			continue
		}
		add = append(add, c)
	}
	return string(add)
}

// isTimeout reports whether err is a read that timed out.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// newID returns a random UUID (version 4), the form of Dapr's ids.
func newID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:]), nil
}
