package main

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"time"

	"github.com/wapr-dev/wapr/abi"
	redis "github.com/wapr-dev/wapr/components-wasm/internal/resp"
	guest "github.com/wapr-dev/wapr/sdk-guest"
)

var (
	_ guest.PubSub        = (*broker)(nil)
	_ guest.BulkPublisher = (*broker)(nil)
	_ guest.Closer        = (*broker)(nil)
)

// Defaults.
const (
	defaultGroup             = "wapr"
	defaultConsumer          = "wapr-wasm"
	defaultProcessingTimeout = 60 * time.Second
	defaultRedeliverInterval = 15 * time.Second

	// Redelivery backoff of a nacked message: nackBackoff, doubling per
	// nack of the same message, up to maxNackBackoff.
	nackBackoff    = 20 * time.Millisecond
	maxNackBackoff = 2 * time.Second

	// maxPollMessages bounds one poll whatever the host asks.
	maxPollMessages = 1000

	// blockSlack is how late Redis may end an XREADGROUP BLOCK: it checks
	// blocked clients' timeouts on its cron tick, every 1000/hz ms (hz is 10
	// by default).
	blockSlack = 100 * time.Millisecond
)

// dataField is the stream entry field holding the message, as Dapr writes it.
const dataField = "data"

// broker is the pub/sub component. An instance serves one call at a time,
// so it has no lock; it holds one Redis connection and, on a subscriber
// instance, the state of its subscriptions.
type broker struct {
	client            *redis.Client
	group             string
	consumer          string
	maxLen            int64 // 0: streams are not trimmed
	processingTimeout time.Duration
	redeliverInterval time.Duration
	subs              map[string]*subscription
	now               func() time.Time
	// bulk is the result of the last BulkPublish, reused: the SDK encodes
	// it before the next call.
	bulk abi.BulkResult
}

// subscription is the delivery state of one topic on a subscriber instance.
type subscription struct {
	topic       string
	nacked      map[string]*redelivery // entry ID → when to deliver it again
	claimCursor string                 // XAUTOCLAIM cursor
	lastClaim   time.Time
	// ownCursor walks the messages pending for this consumer name when
	// the subscription starts ("" once done); see readOwnPending.
	ownCursor string
}

// redelivery is a nacked message waiting for its backoff to pass.
type redelivery struct {
	nacks int       // how often it was nacked
	due   time.Time // zero while it is out with the app again
}

func newBroker() *broker { return &broker{now: time.Now} }

// Init reads the metadata and connects.
func (b *broker) Init(ctx context.Context, md guest.Metadata) error {
	var problems []string
	fail := func(err error) {
		if err != nil {
			problems = append(problems, err.Error())
		}
	}
	cfg := redis.ParseConfig(md, &problems)
	consumerID := md.Get("consumerID")
	b.consumer = md.String("consumerID", defaultConsumer)
	// Dapr names the consumer group after consumerID (usually the app ID), so
	// every app gets every message; keep that when only consumerID is set.
	b.group = md.String("consumerGroup", consumerID)
	if b.group == "" {
		b.group = defaultGroup
	}
	maxLen, err := md.Int("maxLenApprox", 0)
	fail(err)
	if maxLen < 0 {
		fail(errors.New("metadata maxLenApprox must not be negative"))
	}
	b.maxLen = int64(maxLen)
	b.processingTimeout, err = md.Duration("processingTimeout", defaultProcessingTimeout, time.Millisecond)
	fail(err)
	b.redeliverInterval, err = md.Duration("redeliverInterval", defaultRedeliverInterval, time.Millisecond)
	fail(err)
	if err := redis.ConfigError(problems); err != nil {
		return err
	}
	b.client = redis.NewClient(cfg)
	b.subs = map[string]*subscription{}
	if _, err := b.client.Do(ctx, redis.Cmd("PING")); err != nil {
		return wrap("connect", err)
	}
	return nil
}

// Close drops the connection. Messages delivered and not acked stay pending
// in the group; another consumer reclaims them after processingTimeout.
func (b *broker) Close(context.Context) error {
	if b.client != nil {
		b.client.Close()
	}
	return nil
}

// The constant arguments of XADD, encoded once.
var (
	argsXADD   = redis.Cmd("XADD")
	argsMaxLen = redis.Cmd("MAXLEN", "~")
	argsIDData = redis.Cmd("*", dataField)
)

var errNoTopic = guest.InvalidArgument("empty topic")

// queuePublish queues the XADD that appends req to its topic's stream,
// trimmed to about maxLenApprox entries when set. Queued commands are
// written straight into the client's buffer: nothing is allocated.
func (b *broker) queuePublish(req *abi.PublishRequest) {
	c := b.client
	if b.maxLen > 0 {
		c.Start(8)
		c.Args(argsXADD)
		c.Arg(req.Topic)
		c.Args(argsMaxLen)
		c.ArgInt(b.maxLen)
	} else {
		c.Start(5)
		c.Args(argsXADD)
		c.Arg(req.Topic)
	}
	c.Args(argsIDData)
	c.ArgBytes(req.Data)
}

// Publish appends the message to the topic's stream (XADD, trimmed to about
// maxLenApprox entries when set).
func (b *broker) Publish(ctx context.Context, req *abi.PublishRequest) error {
	if req.Topic == "" {
		return errNoTopic
	}
	b.queuePublish(req)
	replies, err := b.client.Exec(ctx, 0)
	if err == nil {
		err = replies[0].Err()
	}
	if err != nil {
		return wrap("publish to "+strconv.Quote(req.Topic), err)
	}
	return nil
}

// BulkPublish appends every entry to its topic's stream in one pipelined
// round trip: one XADD per entry, in request order, which Redis applies in
// that order. An entry without a topic, or whose XADD Redis refuses (its
// key holds another type, say), fails alone; a connection lost on the way
// fails the call, since which entries Redis applied is then unknown.
func (b *broker) BulkPublish(ctx context.Context, req *abi.BulkPublishRequest) (*abi.BulkResult, error) {
	res := &b.bulk
	clear(res.Errors)
	res.Errors = res.Errors[:0]
	queued := 0
	for i := range req.Requests {
		if req.Requests[i].Topic != "" {
			b.queuePublish(&req.Requests[i])
			queued++
		}
	}
	var replies []redis.Value
	if queued > 0 {
		var err error
		if replies, err = b.client.Exec(ctx, 0); err != nil {
			return nil, wrap("bulk publish", err)
		}
	}
	for i := range req.Requests {
		r := &req.Requests[i]
		var err error
		if r.Topic == "" {
			err = errNoTopic
		} else if err, replies = replies[0].Err(), replies[1:]; err != nil {
			err = wrap("publish to "+strconv.Quote(r.Topic), err)
		}
		if err != nil {
			res.Errors = append(res.Errors, guest.BulkItemError(i, r.Topic, err))
		}
	}
	return res, nil
}

// Subscribe creates the consumer group (new messages only) unless it
// exists, and makes this instance the topic's subscriber.
func (b *broker) Subscribe(ctx context.Context, req *abi.SubscribeRequest) error {
	if req.Topic == "" {
		return guest.InvalidArgument("empty topic")
	}
	if err := b.createGroup(ctx, req.Topic, "$"); err != nil {
		return err
	}
	if b.subs[req.Topic] == nil {
		b.subs[req.Topic] = &subscription{topic: req.Topic, nacked: map[string]*redelivery{}, claimCursor: "0-0", ownCursor: "0-0"}
	}
	return nil
}

// createGroup runs XGROUP CREATE … MKSTREAM from start ("$": new messages,
// "0": everything in the stream); an existing group is fine.
func (b *broker) createGroup(ctx context.Context, topic, start string) error {
	_, err := b.client.Do(ctx, redis.Cmd("XGROUP", "CREATE", topic, b.group, start, "MKSTREAM"))
	if err != nil && !redis.IsError(err, "BUSYGROUP") {
		return wrap("create consumer group "+strconv.Quote(b.group)+" on "+strconv.Quote(topic), err)
	}
	return nil
}

// Poll returns up to req.MaxMessages messages, in this order: nacked
// messages whose backoff has passed (re-read with XCLAIM), messages pending
// longer than processingTimeout in the group (XAUTOCLAIM, at most every
// redeliverInterval), then new ones (XREADGROUP … BLOCK). It waits at most
// req.MaxWaitMillis for the first message, and may return empty up to
// blockSlack earlier; the wait happens in Redis (BLOCK) while the SDK's
// socket yields, so it never freezes the instance.
func (b *broker) Poll(ctx context.Context, req *abi.PollRequest) (*abi.PollResponse, error) {
	s := b.subs[req.Topic]
	if s == nil {
		return nil, guest.InvalidArgument("poll of topic " + strconv.Quote(req.Topic) + " before Subscribe on this instance")
	}
	limit := int(min(max(req.MaxMessages, 1), maxPollMessages))
	resp := &abi.PollResponse{}
	deadline := b.now().Add(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	for {
		if err := b.readOwnPending(ctx, s, limit, resp); err != nil {
			return nil, err
		}
		if len(resp.Messages) >= limit {
			return resp, nil
		}
		if err := b.redeliverNacked(ctx, s, limit, resp); err != nil {
			return nil, err
		}
		if len(resp.Messages) < limit {
			if err := b.reclaimStale(ctx, s, limit, resp); err != nil {
				return nil, err
			}
		}
		if len(resp.Messages) >= limit {
			return resp, nil
		}
		// Block for new messages only while nothing is ready to return, and
		// no longer than until the next nacked message is due. Redis ends a
		// BLOCK at its next cron tick after the timeout (every 100 ms at the
		// default hz 10), so keep blockSlack in hand: the poll may return
		// early, never late.
		var block time.Duration
		now := b.now()
		if len(resp.Messages) == 0 {
			block = deadline.Sub(now) - blockSlack
			if due, ok := s.nextDue(); ok && due.Sub(now) < block {
				block = max(due.Sub(now), time.Millisecond)
			}
		}
		if err := b.readNew(ctx, s, limit-len(resp.Messages), block, resp); err != nil {
			return nil, err
		}
		if len(resp.Messages) > 0 || block < time.Millisecond || !b.now().Before(deadline) {
			return resp, nil
		}
	}
}

// readNew reads new messages for the group (XREADGROUP … >), waiting up to
// block in Redis when block >= 1ms. A missing group (Redis restarted or the
// stream was deleted) is created again, from the start of the stream so
// messages published since are not lost, and the read retried once.
func (b *broker) readNew(ctx context.Context, s *subscription, count int, block time.Duration, resp *abi.PollResponse) error {
	read := func() (redis.Value, error) {
		c := redis.Cmd("XREADGROUP", "GROUP", b.group, b.consumer, "COUNT", strconv.Itoa(count))
		ms := block.Milliseconds()
		if ms > 0 { // BLOCK 0 would wait forever
			c.Str("BLOCK").Int(ms)
		}
		c.Str("STREAMS").Str(s.topic).Str(">")
		replies, err := b.client.Pipeline(ctx, []*redis.Command{c}, time.Duration(ms)*time.Millisecond)
		if err != nil {
			return redis.Value{}, err
		}
		return replies[0], replies[0].Err()
	}
	v, err := read()
	if redis.IsError(err, "NOGROUP") {
		if err := b.createGroup(ctx, s.topic, "0"); err != nil {
			return err
		}
		v, err = read()
	}
	if err != nil {
		return wrap("read "+strconv.Quote(s.topic), err)
	}
	if v.IsNil {
		return nil
	}
	for _, stream := range v.Arr {
		if len(stream.Arr) == 2 {
			b.appendEntries(s, stream.Arr[1].Arr, resp, nil)
		}
	}
	return nil
}

// readOwnPending delivers, once per subscription, the messages already
// pending for this consumer name (XREADGROUP … from the start of its
// pending list): every instance of one consumerID reads as the same Redis
// consumer, so what a previous subscription read and never acknowledged —
// a message Redis handed to its blocked read just as it was cancelled, say
// — reaches the new one at once instead of after processingTimeout.
func (b *broker) readOwnPending(ctx context.Context, s *subscription, limit int, resp *abi.PollResponse) error {
	for s.ownCursor != "" && len(resp.Messages) < limit {
		count := limit - len(resp.Messages)
		c := redis.Cmd("XREADGROUP", "GROUP", b.group, b.consumer, "COUNT", strconv.Itoa(count), "STREAMS", s.topic, s.ownCursor)
		v, err := b.client.Do(ctx, c)
		if redis.IsError(err, "NOGROUP") {
			s.ownCursor = "" // nothing can be pending in a group that is gone
			return nil
		}
		if err != nil {
			return wrap("read pending of "+strconv.Quote(s.topic), err)
		}
		var entries []redis.Value
		if !v.IsNil && len(v.Arr) == 1 && len(v.Arr[0].Arr) == 2 {
			entries = v.Arr[0].Arr[1].Arr
		}
		if len(entries) < count {
			s.ownCursor = ""
		} else if last := entries[len(entries)-1]; len(last.Arr) == 2 {
			s.ownCursor = last.Arr[0].Text()
		} else {
			s.ownCursor = ""
		}
		b.appendEntries(s, entries, resp, nil)
	}
	return nil
}

// redeliverNacked re-reads the nacked messages whose backoff has passed
// (XCLAIM with no minimum idle time moves nothing: they are pending for this
// consumer already; it returns the entries and counts the delivery).
func (b *broker) redeliverNacked(ctx context.Context, s *subscription, limit int, resp *abi.PollResponse) error {
	ids := s.dueIDs(b.now(), limit-len(resp.Messages))
	if len(ids) == 0 {
		return nil
	}
	c := redis.Cmd("XCLAIM", s.topic, b.group, b.consumer, "0")
	for _, id := range ids {
		c.Str(id)
	}
	v, err := b.client.Do(ctx, c)
	if redis.IsError(err, "NOGROUP") {
		// The group and its pending list are gone: so is the need to redeliver.
		clear(s.nacked)
		return b.createGroup(ctx, s.topic, "0")
	}
	if err != nil {
		return wrap("redeliver on "+strconv.Quote(s.topic), err)
	}
	got := map[string]bool{}
	b.appendEntries(s, v.Arr, resp, got)
	// Entries trimmed from the stream since cannot be delivered again.
	var gone []string
	for _, id := range ids {
		if !got[id] {
			gone = append(gone, id)
			delete(s.nacked, id)
		}
	}
	return b.ackIDs(ctx, s.topic, gone)
}

// reclaimStale claims messages pending in the group for longer than
// processingTimeout (a subscriber that died, or an app that never
// answered), at most every redeliverInterval. Both at 0 disable it.
func (b *broker) reclaimStale(ctx context.Context, s *subscription, limit int, resp *abi.PollResponse) error {
	now := b.now()
	if b.processingTimeout <= 0 || b.redeliverInterval <= 0 || now.Sub(s.lastClaim) < b.redeliverInterval {
		return nil
	}
	c := redis.Cmd("XAUTOCLAIM", s.topic, b.group, b.consumer).Int(b.processingTimeout.Milliseconds()).
		Str(s.claimCursor).Str("COUNT").Int(int64(limit - len(resp.Messages)))
	v, err := b.client.Do(ctx, c)
	if redis.IsError(err, "NOGROUP") {
		return b.createGroup(ctx, s.topic, "0")
	}
	if err != nil {
		return wrap("reclaim on "+strconv.Quote(s.topic), err)
	}
	if len(v.Arr) < 2 {
		return wrap("reclaim on "+strconv.Quote(s.topic), errors.New("unexpected XAUTOCLAIM reply"))
	}
	s.claimCursor = v.Arr[0].Text()
	if s.claimCursor == "0-0" {
		// A full pass over the pending list: rest until the next interval.
		s.lastClaim = now
	}
	b.appendEntries(s, v.Arr[1].Arr, resp, nil)
	return nil
}

// appendEntries adds stream entries ([id, [field, value, …]]) to resp as
// messages, noting their IDs in got when it is not nil. An entry without a
// body (deleted since) is skipped.
func (b *broker) appendEntries(s *subscription, entries []redis.Value, resp *abi.PollResponse, got map[string]bool) {
	for _, e := range entries {
		if len(e.Arr) != 2 || e.Arr[1].IsNil {
			continue
		}
		id := e.Arr[0].Text()
		if got != nil {
			got[id] = true
		}
		if r := s.nacked[id]; r != nil {
			r.due = time.Time{} // out with the app again
		}
		msg := abi.Message{AckToken: e.Arr[0].Str, Topic: s.topic}
		fields := e.Arr[1].Arr
		for i := 0; i+1 < len(fields); i += 2 {
			if fields[i].Text() == dataField {
				msg.Data = fields[i+1].Str
				break
			}
		}
		resp.Messages = append(resp.Messages, msg)
	}
}

// Ack acknowledges messages (XACK): they leave the group's pending list.
func (b *broker) Ack(ctx context.Context, req *abi.AckRequest) error {
	ids := make([]string, len(req.Tokens))
	for i, t := range req.Tokens {
		ids[i] = string(t)
	}
	if s := b.subs[req.Topic]; s != nil {
		for _, id := range ids {
			delete(s.nacked, id)
		}
	}
	return b.ackIDs(ctx, req.Topic, ids)
}

func (b *broker) ackIDs(ctx context.Context, topic string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	c := redis.Cmd("XACK", topic, b.group)
	for _, id := range ids {
		c.Str(id)
	}
	_, err := b.client.Do(ctx, c)
	if err != nil && !redis.IsError(err, "NOGROUP") { // no group: nothing is pending
		return wrap("ack on "+strconv.Quote(topic), err)
	}
	return nil
}

// Nack schedules messages for redelivery by this instance after a short
// backoff (20ms, doubling per nack of the same message, up to 2s). They stay
// pending in the group meanwhile, so if the instance goes away another
// subscriber reclaims them after processingTimeout.
func (b *broker) Nack(_ context.Context, req *abi.AckRequest) error {
	s := b.subs[req.Topic]
	if s == nil {
		return guest.InvalidArgument("nack on topic " + strconv.Quote(req.Topic) + " before Subscribe on this instance")
	}
	now := b.now()
	for _, t := range req.Tokens {
		id := string(t)
		r := s.nacked[id]
		if r == nil {
			r = &redelivery{}
			s.nacked[id] = r
		}
		r.nacks++
		backoff := nackBackoff << min(r.nacks-1, 10)
		r.due = now.Add(min(backoff, maxNackBackoff))
	}
	return nil
}

// dueIDs returns up to n nacked IDs whose backoff has passed, earliest
// first.
func (s *subscription) dueIDs(now time.Time, n int) []string {
	var ids []string
	for id, r := range s.nacked {
		if !r.due.IsZero() && !r.due.After(now) {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return s.nacked[ids[i]].due.Before(s.nacked[ids[j]].due) })
	if len(ids) > n {
		ids = ids[:n]
	}
	return ids
}

// nextDue returns when the next nacked message is due.
func (s *subscription) nextDue() (time.Time, bool) {
	var next time.Time
	for _, r := range s.nacked {
		if !r.due.IsZero() && (next.IsZero() || r.due.Before(next)) {
			next = r.due
		}
	}
	return next, !next.IsZero()
}

// wrap turns a client error into the component's error, as state-redis
// does: deadline, unavailable (transport), or internal (error reply).
func wrap(op string, err error) error {
	e := &guest.Error{Status: abi.StatusInternal, Message: "pubsub.redis: " + op, Err: err}
	switch _, isReply := errors.AsType[*redis.Error](err); {
	case redis.IsTimeout(err):
		e.Status = abi.StatusDeadline
	case isReply:
		for _, p := range []string{"LOADING", "MASTERDOWN", "BUSY", "TRYAGAIN", "CLUSTERDOWN", "MISCONF"} {
			if redis.IsError(err, p) {
				e.Status = abi.StatusUnavailable
			}
		}
	default:
		e.Status = abi.StatusUnavailable
	}
	return e
}
