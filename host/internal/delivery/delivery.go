// Package delivery runs the app's subscriptions: it asks the app for its
// programmatic subscriptions (GET /dapr/subscribe), adds the declarative
// ones, subscribes to each broker, and delivers every message to the app as
// a CloudEvent, turning the app's answer into an ack, a redelivery or a drop.
//
// Delivery is at-least-once: a handler error tells the broker to deliver the
// message again (see package pubsub). A Manager is safe for concurrent use.
package delivery

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/wapr-dev/wapr/host/component/pubsub"
	"github.com/wapr-dev/wapr/host/internal/api"
	"github.com/wapr-dev/wapr/host/internal/resources"
	"github.com/wapr-dev/wapr/host/internal/routing"
	"github.com/wapr-dev/wapr/host/internal/telemetry"
	"github.com/wapr-dev/wapr/host/internal/tracing"
)

// Subscription types as the metadata API names them.
const (
	TypeDeclarative  = "DECLARATIVE"
	TypeProgrammatic = "PROGRAMMATIC"
	// TypeStreaming is a subscription an app opened over a gRPC stream
	// (SubscribeTopicEventsAlpha1): its messages go to that stream.
	TypeStreaming = "STREAMING"
)

// Subscription is one topic the app consumes.
type Subscription struct {
	resources.Subscription
	Type string
}

// Manager owns the running subscriptions.
type Manager struct {
	api *api.API
	app api.AppChannel
	log *slog.Logger

	mu      sync.Mutex
	ctx     context.Context // lives until Stop
	cancel  context.CancelFunc
	abort   context.Context // done when Stop gives up on deliveries in flight
	giveUp  context.CancelFunc
	started bool // Start was called: the app's subscriptions run
	active  []*running

	// flight counts the deliveries in flight. Not a sync.WaitGroup: a
	// delivery may begin while Stop waits (one that was on its way when
	// the subscription ended), which a WaitGroup forbids.
	flight   sync.Mutex
	inflight int
	landed   chan struct{} // closed when inflight reaches 0; nil: nobody waits

	metrics *telemetry.Metrics // nil: none; see SetMetrics
}

// SetMetrics makes the manager count the messages it drops before the app
// sees them (the app channel counts the others); call it before Start.
func (m *Manager) SetMetrics(mt *telemetry.Metrics) { m.metrics = mt }

// New returns a Manager delivering through app, which may be nil when there
// is no app (only streaming subscriptions can run then). The app channel
// bounds concurrent calls to the app (see api.LimitApp), deliveries and
// invocations together, as daprd's --app-max-concurrency does.
func New(a *api.API, app api.AppChannel, log *slog.Logger) *Manager {
	ctx, cancel := context.WithCancel(context.Background())
	abort, giveUp := context.WithCancel(context.Background())
	return &Manager{api: a, app: app, log: log, ctx: ctx, cancel: cancel, abort: abort, giveUp: giveUp}
}

// begin counts a delivery in flight and returns the context its app call
// runs in: the broker's values and deadline, but not its cancellation, so a
// subscription that ends (Stop, a hot reload) lets the app calls it started
// finish; only Stop giving up cuts them short. A delivery still waiting to
// reach the app (for its health, for a slot) gives up when the broker's
// context is done (api.WithWaitContext), and one whose broker's context is
// done already is not begun: the message stays with the broker. end must
// be called when the delivery is over.
func (m *Manager) begin(ctx context.Context) (_ context.Context, end func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("%w: the broker no longer waits for it: %w", errRetry, err)
	}
	m.flight.Lock()
	m.inflight++
	m.flight.Unlock()
	call := context.WithoutCancel(ctx)
	var cancel context.CancelFunc
	if deadline, ok := ctx.Deadline(); ok {
		call, cancel = context.WithDeadline(call, deadline)
	} else {
		call, cancel = context.WithCancel(call)
	}
	stop := context.AfterFunc(m.abort, cancel)
	return api.WithWaitContext(call, ctx), func() {
		stop()
		cancel()
		m.flight.Lock()
		if m.inflight--; m.inflight == 0 && m.landed != nil {
			close(m.landed)
			m.landed = nil
		}
		m.flight.Unlock()
	}, nil
}

// landedCh returns a channel closed once no delivery is in flight.
func (m *Manager) landedCh() <-chan struct{} {
	m.flight.Lock()
	defer m.flight.Unlock()
	if m.inflight == 0 {
		done := make(chan struct{})
		close(done)
		return done
	}
	if m.landed == nil {
		m.landed = make(chan struct{})
	}
	return m.landed
}

// appSubscription is one element of the app's /dapr/subscribe answer, in
// either of Dapr's shapes (v1 route, v2 routes).
type appSubscription struct {
	PubSubName      string            `json:"pubsubname"`
	Topic           string            `json:"topic"`
	Route           string            `json:"route"`
	Routes          *appRoutes        `json:"routes"`
	Metadata        map[string]string `json:"metadata"`
	DeadLetterTopic string            `json:"deadLetterTopic"`
}

type appRoutes struct {
	Rules []struct {
		Match string `json:"match"`
		Path  string `json:"path"`
	} `json:"rules"`
	Default string `json:"default"`
}

// FetchProgrammatic asks the app for its subscriptions. A 404 or an empty
// body means none.
func (m *Manager) FetchProgrammatic(ctx context.Context) ([]Subscription, error) {
	res, err := m.app.Call(ctx, &api.AppRequest{Call: api.AppCallSubscriptions, Method: "GET", Path: "/dapr/subscribe", ContentType: "application/json"})
	if err != nil {
		return nil, err
	}
	if res.Status == 404 || len(bytes.TrimSpace(res.Body)) == 0 {
		return nil, nil
	}
	if res.Status/100 != 2 {
		return nil, fmt.Errorf("GET /dapr/subscribe answered %d", res.Status)
	}
	var list []appSubscription
	if err := json.Unmarshal(res.Body, &list); err != nil {
		return nil, fmt.Errorf("GET /dapr/subscribe: the answer is not a JSON array of subscriptions: %w", err)
	}
	out := make([]Subscription, 0, len(list))
	for i, s := range list {
		if s.PubSubName == "" || s.Topic == "" {
			return nil, fmt.Errorf("GET /dapr/subscribe: subscription %d lacks pubsubname or topic", i)
		}
		sub := resources.Subscription{
			PubsubName: s.PubSubName, Topic: s.Topic, DefaultPath: s.Route,
			Metadata: s.Metadata, DeadLetterTopic: s.DeadLetterTopic,
		}
		if s.Routes != nil {
			for _, r := range s.Routes.Rules {
				sub.Rules = append(sub.Rules, resources.Rule{Match: r.Match, Path: r.Path})
			}
			if s.Routes.Default != "" {
				sub.DefaultPath = s.Routes.Default
			}
		}
		if sub.DefaultPath == "" && len(sub.Rules) == 0 {
			return nil, fmt.Errorf("GET /dapr/subscribe: subscription to %s/%s has no route", s.PubSubName, s.Topic)
		}
		out = append(out, Subscription{Subscription: sub, Type: TypeProgrammatic})
	}
	return out, nil
}

// Start subscribes to every subscription whose pubsub is served and returns
// the problems with the others. It must be called once, before Replace.
func (m *Manager) Start(subs []Subscription) []error {
	m.mu.Lock()
	m.started = true
	m.mu.Unlock()
	return m.startAll(subs)
}

// Stream starts a streaming subscription: s's messages go to ch, the app's
// stream, instead of the app channel, with the same routing, retry, drop
// and dead-letter rules. Several streams may subscribe to one topic, as in
// daprd (each is its own consumer of the broker; with a shared consumer
// group they share the messages); a topic the app subscribed to otherwise
// is refused. stop ends it (messages not acknowledged stay with the
// broker); a hot reload that replaces the broker moves it to the new one.
func (m *Manager) Stream(s Subscription, ch api.AppChannel) (stop func(), err error) {
	s.Type = TypeStreaming
	m.mu.Lock()
	for _, r := range m.active {
		if r.PubsubName == s.PubsubName && r.Topic == s.Topic && r.Type != TypeStreaming {
			m.mu.Unlock()
			return nil, fmt.Errorf("topic %s on pubsub %s already has a %s subscription", s.Topic, s.PubsubName, strings.ToLower(r.Type))
		}
	}
	m.mu.Unlock()
	r, err := m.startOne(s, ch)
	if err != nil {
		return nil, err
	}
	m.api.SetSubscriptions(m.Info())
	return func() {
		m.mu.Lock()
		r.cancel()
		for i, a := range m.active {
			if a == r {
				m.active = append(m.active[:i:i], m.active[i+1:]...)
				break
			}
		}
		m.mu.Unlock()
		m.api.SetSubscriptions(m.Info())
	}, nil
}

func (m *Manager) startAll(subs []Subscription) []error {
	var errs []error
	seen := map[string]bool{}
	m.mu.Lock()
	for _, r := range m.active {
		if r.Type != TypeStreaming { // streams never keep the app's own subscriptions out
			seen[r.PubsubName+"\x00"+r.Topic] = true
		}
	}
	m.mu.Unlock()
	for _, s := range subs {
		key := s.PubsubName + "\x00" + s.Topic
		if seen[key] {
			errs = append(errs, fmt.Errorf("subscription to topic %s on pubsub %s (%s) duplicates an earlier one; ignored", s.Topic, s.PubsubName, strings.ToLower(s.Type)))
			continue
		}
		if _, err := m.startOne(s, m.app); err != nil {
			errs = append(errs, err)
			continue
		}
		seen[key] = true
	}
	m.api.SetSubscriptions(m.Info())
	return errs
}

// startOne subscribes s on the pubsub of the current snapshot, delivering
// through app.
func (m *Manager) startOne(s Subscription, app api.AppChannel) (*running, error) {
	ps, ok := m.api.Snapshot().PubSubs[s.PubsubName]
	if !ok {
		return nil, fmt.Errorf("subscription to topic %s: pubsub %s is not loaded", s.Topic, s.PubsubName)
	}
	router, err := routing.New(s.Rules, s.DefaultPath)
	if err != nil {
		return nil, fmt.Errorf("subscription to topic %s on pubsub %s: %w", s.Topic, s.PubsubName, err)
	}
	ctx, cancel := context.WithCancel(m.ctx)
	raw := strings.EqualFold(s.Metadata["rawPayload"], "true")
	d := &deliverer{m: m, app: app, sub: s, router: router, hasRules: len(s.Rules) > 0, raw: raw, ps: ps}
	if err := ps.PubSub.Subscribe(ctx, pubsub.SubscribeRequest{Topic: s.Topic, Metadata: s.Metadata}, d.handle); err != nil {
		cancel()
		return nil, fmt.Errorf("subscribing to topic %s on pubsub %s: %w", s.Topic, s.PubsubName, err)
	}
	r := &running{Subscription: s, cancel: cancel, app: app}
	m.mu.Lock()
	m.active = append(m.active, r)
	m.mu.Unlock()
	return r, nil
}

// running is an active subscription and how to stop it.
type running struct {
	Subscription
	cancel context.CancelFunc
	app    api.AppChannel // where messages go
}

// Replace stops the subscriptions for which stop returns true (each stops
// at its broker's next poll boundary; unacknowledged messages stay with the
// broker) and starts subs, against the current snapshot. Hot reload uses it
// when a pubsub component or the declared subscriptions change.
// A stopped streaming subscription is started again on the new snapshot
// with its stream; if that fails, its stream gets no more messages.
func (m *Manager) Replace(stop func(Subscription) bool, subs []Subscription) []error {
	m.mu.Lock()
	kept := m.active[:0:0]
	var streams []*running
	for _, r := range m.active {
		if stop(r.Subscription) {
			r.cancel()
			if r.Type == TypeStreaming {
				streams = append(streams, r)
			}
			continue
		}
		kept = append(kept, r)
	}
	m.active = kept
	started := m.started
	m.mu.Unlock()
	var errs []error
	for _, r := range streams {
		if _, err := m.startOne(r.Subscription, r.app); err != nil {
			errs = append(errs, fmt.Errorf("streaming %w", err))
		}
	}
	if !started {
		// Not started yet: Start will see the new configuration.
		m.api.SetSubscriptions(m.Info())
		return errs
	}
	return append(errs, m.startAll(subs)...)
}

// Active returns the subscriptions running now.
func (m *Manager) Active() []Subscription {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Subscription, len(m.active))
	for i, r := range m.active {
		out[i] = r.Subscription
	}
	return out
}

// Info describes the active subscriptions for the metadata API.
func (m *Manager) Info() []api.SubscriptionInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]api.SubscriptionInfo, 0, len(m.active))
	for _, r := range m.active {
		s := r.Subscription
		info := api.SubscriptionInfo{
			PubSubName: s.PubsubName, Topic: s.Topic, Metadata: s.Metadata,
			DeadLetterTopic: s.DeadLetterTopic, Type: s.Type,
		}
		for _, r := range s.Rules {
			info.Rules = append(info.Rules, api.RuleInfo{Match: r.Match, Path: r.Path})
		}
		if s.DefaultPath != "" {
			info.Rules = append(info.Rules, api.RuleInfo{Path: s.DefaultPath})
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].PubSubName != out[j].PubSubName {
			return out[i].PubSubName < out[j].PubSubName
		}
		return out[i].Topic < out[j].Topic
	})
	return out
}

// Stop ends every subscription and waits, until ctx is done, for deliveries
// in flight to finish; when ctx is done first, their app calls are
// canceled. Messages not acknowledged stay with the broker.
func (m *Manager) Stop(ctx context.Context) error {
	m.mu.Lock()
	if m.cancel != nil {
		m.cancel()
	}
	m.mu.Unlock()
	select {
	case <-m.landedCh():
		return nil
	case <-ctx.Done():
		m.giveUp()
		return fmt.Errorf("deliveries still in flight: %w", ctx.Err())
	}
}

// deliverer delivers the messages of one subscription.
type deliverer struct {
	m        *Manager
	app      api.AppChannel
	sub      Subscription
	router   *routing.Router
	hasRules bool
	raw      bool
	ps       *api.PubSub
}

// errRetry is returned to the broker so it redelivers the message.
var errRetry = errors.New("the app asked for the message to be retried")

// handle is the pubsub.Handler of the subscription.
func (d *deliverer) handle(ctx context.Context, msg *pubsub.Message) error {
	ctx, end, err := d.m.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	event, err := d.cloudEvent(msg)
	if err != nil {
		// An undecodable message can never be delivered: drop it rather than
		// redeliver it forever.
		d.m.log.Warn("dropping a message that is not a CloudEvent", "pubsub", d.sub.PubsubName, "topic", d.sub.Topic, "error", err)
		d.m.metrics.Dropped(d.sub.PubsubName, d.sub.Topic)
		d.deadLetter(ctx, msg.Data)
		return nil
	}
	path, expired, ok := d.route(event)
	if expired {
		d.m.log.Warn("dropping an expired message", "pubsub", d.sub.PubsubName, "topic", d.sub.Topic)
		d.m.metrics.Dropped(d.sub.PubsubName, d.sub.Topic)
		d.deadLetter(ctx, event)
		return nil
	}
	if !ok {
		d.m.log.Debug("no route matches the message; dropped", "pubsub", d.sub.PubsubName, "topic", d.sub.Topic)
		d.m.metrics.Dropped(d.sub.PubsubName, d.sub.Topic)
		return nil
	}
	headers := map[string]string{"pubsubname": d.sub.PubsubName}
	for k, v := range msg.Metadata {
		if k != "" && isHeaderSafe(k) && isHeaderSafe(v) {
			headers[k] = v
		}
	}
	tp, ts := traceContextOf(event)
	var span tracing.Span
	if tracer := d.m.api.Tracer(); tracer != nil {
		// The delivery's span, named as daprd names it, continues the
		// publisher's trace; the app continues from it.
		span = tracer.Start("pubsub/"+d.sub.Topic, tracing.Consumer, tracing.Parse(tp, ts))
		tracing.SetAttributes(span, tracing.String("messaging.system", "pubsub"), tracing.String("messaging.destination.name", d.sub.Topic))
		tp, ts = tracing.Headers(span)
	}
	if tp != "" && isHeaderSafe(tp) {
		headers["traceparent"] = tp
	}
	if ts != "" && isHeaderSafe(ts) {
		headers["tracestate"] = ts
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	res, err := d.app.Call(ctx, &api.AppRequest{
		Call: api.AppCallTopicEvent, PubSub: d.sub.PubsubName, Topic: d.sub.Topic, Method: "POST", Path: path, ContentType: api.ContentTypeCloudEvent, Headers: headers, Body: event,
	})
	if err != nil {
		tracing.End(span, err)
		d.m.log.Warn("delivery to the app failed; will retry", "pubsub", d.sub.PubsubName, "topic", d.sub.Topic, "path", path, "error", err)
		return fmt.Errorf("%w: %v", errRetry, err)
	}
	tracing.EndHTTP(span, res.Status)
	switch api.ReadTopicOutcome(res) {
	case api.TopicSuccess:
		return nil
	case api.TopicDrop:
		d.m.log.Warn("the app dropped a message", "pubsub", d.sub.PubsubName, "topic", d.sub.Topic, "status", res.Status)
		d.deadLetter(ctx, event)
		return nil
	default:
		return fmt.Errorf("%w (status %d)", errRetry, res.Status)
	}
}

// cloudEvent returns the bytes delivered to the app: the message itself
// when it is a CloudEvent, else (raw payload subscriptions) a CloudEvent
// carrying it in data_base64.
//
// The raw payload envelope is daprd's (components-contrib's
// pubsub.FromRawPayload): exactly id, source "Dapr", type, specversion,
// datacontenttype application/octet-stream, data_base64, topic and
// pubsubname, with no time; trace fields the broker's metadata carries are
// copied, a traceparent also standing for traceid, as daprd does.
func (d *deliverer) cloudEvent(msg *pubsub.Message) ([]byte, error) {
	if !d.raw {
		if !json.Valid(msg.Data) {
			return nil, errors.New("payload is not JSON")
		}
		return msg.Data, nil
	}
	ce := map[string]any{
		"specversion":     "1.0",
		"id":              api.NewUUID(),
		"source":          rawPayloadSource,
		"type":            api.EventTypeSent,
		"datacontenttype": "application/octet-stream",
		"topic":           d.sub.Topic,
		"pubsubname":      d.sub.PubsubName,
		"data_base64":     base64.StdEncoding.EncodeToString(msg.Data),
	}
	if v, ok := msg.Metadata["traceid"]; ok {
		ce["traceid"] = v
	}
	if v, ok := msg.Metadata["traceparent"]; ok {
		ce["traceparent"], ce["traceid"] = v, v
	}
	if v, ok := msg.Metadata["tracestate"]; ok {
		ce["tracestate"] = v
	}
	return json.Marshal(ce)
}

// rawPayloadSource is the source of the CloudEvent around a raw payload,
// daprd's default source.
const rawPayloadSource = "Dapr"

// route picks the app path for event and reports whether it has expired.
func (d *deliverer) route(event []byte) (path string, expired, ok bool) {
	mayExpire := bytes.Contains(event, []byte(`"expiration"`))
	if !d.hasRules && !mayExpire {
		return d.sub.DefaultPath, false, d.sub.DefaultPath != ""
	}
	var m map[string]any
	if err := json.Unmarshal(event, &m); err != nil {
		return "", false, false
	}
	if exp, ok := m["expiration"].(string); ok && exp != "" {
		if t, err := time.Parse(time.RFC3339, exp); err == nil && time.Now().After(t) {
			return "", true, false
		}
	}
	if !d.hasRules {
		return d.sub.DefaultPath, false, d.sub.DefaultPath != ""
	}
	path, ok = d.router.Route(m)
	return path, false, ok
}

// deadLetter republishes a dropped message to the subscription's dead-letter
// topic, when it has one.
func (d *deliverer) deadLetter(ctx context.Context, data []byte) {
	if d.sub.DeadLetterTopic == "" {
		return
	}
	err := d.ps.PubSub.Publish(ctx, &pubsub.PublishRequest{Topic: d.sub.DeadLetterTopic, Data: data, ContentType: api.ContentTypeCloudEvent})
	if err != nil {
		d.m.log.Error("publishing to the dead-letter topic failed", "pubsub", d.sub.PubsubName, "topic", d.sub.DeadLetterTopic, "error", err)
	}
}

// traceContextOf returns the trace context a CloudEvent carries: its
// top-level traceparent (or, lacking one, traceid, as daprd reads it) and
// tracestate attributes, read as JSON, so that fields of those names inside
// data do not count. Names match exactly (CloudEvents attributes are
// lower case), the last of repeated names wins; an attribute that is not a
// string is ignored, and so is everything in an event that is not a JSON
// object.
//
// It walks the event's top-level members and skips their values without
// decoding them (decoding every event whole cost a tenth of a delivering
// sidecar's CPU); only the three attributes are decoded. Of an event that
// is not valid JSON it may return what it found before the fault (the
// delivery goes on either way).
func traceContextOf(event []byte) (traceParent, traceState string) {
	if !bytes.Contains(event, []byte(`"trace`)) {
		return "", "" // no attribute can be there
	}
	var traceID string
	forTopLevel(event, func(key, value []byte) {
		if bytes.IndexByte(key, '\\') >= 0 { // a name written with escapes
			var k string
			if json.Unmarshal(key, &k) != nil {
				return
			}
			key = []byte(strconv.Quote(k))
		}
		var dst *string
		switch string(key) {
		case `"traceparent"`:
			dst = &traceParent
		case `"traceid"`:
			dst = &traceID
		case `"tracestate"`:
			dst = &traceState
		default:
			return
		}
		*dst = "" // the last of repeated names wins, as in encoding/json
		switch {
		case len(value) < 2 || value[0] != '"' || value[len(value)-1] != '"':
		case bytes.IndexByte(value, '\\') < 0 && utf8.Valid(value):
			*dst = string(value[1 : len(value)-1])
		default:
			json.Unmarshal(value, dst)
		}
	})
	if traceParent == "" {
		traceParent = traceID
	}
	return traceParent, traceState
}

// forTopLevel calls f with the raw key (quotes included) and raw value of
// each member of the JSON object doc; a document that is not an object has
// no members, and one that is not valid JSON stops at the fault or reads
// past it, never out of bounds. A key written with escapes is passed as
// written.
func forTopLevel(doc []byte, f func(key, value []byte)) {
	i := skipSpace(doc, 0)
	if i >= len(doc) || doc[i] != '{' {
		return
	}
	i++
	for {
		i = skipSpace(doc, i)
		if i >= len(doc) || doc[i] != '"' {
			return // '}': the end
		}
		end := skipValue(doc, i)
		key := doc[i:min(end, len(doc))]
		if i = skipSpace(doc, end); i >= len(doc) || doc[i] != ':' {
			return
		}
		if i = skipSpace(doc, i+1); i >= len(doc) {
			return
		}
		end = min(skipValue(doc, i), len(doc))
		f(key, doc[i:end])
		i = skipSpace(doc, end)
		if i >= len(doc) || doc[i] != ',' {
			return
		}
		i++
	}
}

func skipSpace(doc []byte, i int) int {
	for i < len(doc) && (doc[i] == ' ' || doc[i] == '\t' || doc[i] == '\n' || doc[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the end of the valid JSON value that starts at i.
func skipValue(doc []byte, i int) int {
	depth := 0
	for i < len(doc) {
		switch doc[i] {
		case '"':
			i++
			for i < len(doc) && doc[i] != '"' {
				if doc[i] == '\\' {
					i++
				}
				i++
			}
			i++ // past the closing quote
		case '{', '[':
			depth++
			i++
		case '}', ']':
			depth--
			i++
		case ',', ' ', '\t', '\n', '\r', ':':
			if depth == 0 {
				return i
			}
			i++
		default:
			i++
		}
		if depth == 0 && i < len(doc) && (doc[i] == ',' || doc[i] == '}' || doc[i] == ']' || doc[i] == ':' || doc[i] == ' ' || doc[i] == '\t' || doc[i] == '\n' || doc[i] == '\r') {
			return i
		}
	}
	return i
}

func isHeaderSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}
