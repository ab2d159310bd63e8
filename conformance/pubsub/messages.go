package pubsub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/wapr-dev/wapr/conformance"
	contract "github.com/wapr-dev/wapr/host/component/pubsub"
)

// body is the JSON every message of the suite carries.
type body struct {
	Run  string `json:"run"`
	Case string `json:"case"`
	Seq  int    `json:"seq"`
}

// Every message is published with this content type and with its sequence
// number under seqKey in its metadata.
const (
	contentType = "application/json"
	seqKey      = "conformanceSeq"
)

// errDeliberate is what a handler returns when a case wants a delivery to
// fail.
var errDeliberate = errors.New("conformance: deliberate handler failure")

// data is the body of message seq of the case named caseID.
func (c *checker) data(caseID string, seq int) []byte {
	b, _ := json.Marshal(body{Run: c.run, Case: caseID, Seq: seq}) // cannot fail
	return b
}

// partitionKey is the partition key of message seq in ordering cases.
func partitionKey(seq int) string { return "key-" + strconv.Itoa(seq%3) }

// request is the publish request for message seq of case caseID on topic.
func (c *checker) request(caseID, topic string, seq int, md map[string]string) *contract.PublishRequest {
	meta := maps.Clone(c.cfg.PublishMetadata)
	if meta == nil {
		meta = map[string]string{}
	}
	maps.Copy(meta, md)
	meta[seqKey] = strconv.Itoa(seq)
	return &contract.PublishRequest{Topic: topic, Data: c.data(caseID, seq), ContentType: contentType, Metadata: meta}
}

// publish publishes messages seqs of t's case on topic through ps, ending
// the case on an error.
func (c *checker) publish(t conformance.T, ps contract.PubSub, topic string, seqs []int, md func(seq int) map[string]string) {
	t.Helper()
	for _, seq := range seqs {
		var extra map[string]string
		if md != nil {
			extra = md(seq)
		}
		ctx, cancel := context.WithTimeout(t.Context(), c.cfg.CallTimeout)
		err := ps.Publish(ctx, c.request(t.Name(), topic, seq, extra))
		cancel()
		if err != nil {
			t.Fatalf("Publish of message %d to %q: %v", seq, topic, err)
		}
	}
}

// publishConcurrently publishes messages 0…total-1 of t's case from
// publishers goroutines at once, publisher p those numbered p, p+publishers,
// …, each message seq to topic(seq); failures are the case's errors.
func (c *checker) publishConcurrently(t conformance.T, publishers, total int, topic func(seq int) string) {
	t.Helper()
	errs := make(chan error, total)
	ctx, caseID := t.Context(), t.Name()
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for seq := p; seq < total; seq += publishers {
				pctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
				err := c.ps.Publish(pctx, c.request(caseID, topic(seq), seq, nil))
				cancel()
				if err != nil {
					errs <- fmt.Errorf("publisher %d, message %d: %w", p, seq, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Publish: %v", err)
	}
}

// subscribe subscribes h to topic on ps for as long as ctx lives, ending the
// case when Subscribe fails or does not return within CallTimeout.
func (c *checker) subscribe(t conformance.T, ps contract.PubSub, ctx context.Context, topic string, h contract.Handler) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		errc <- ps.Subscribe(ctx, contract.SubscribeRequest{Topic: topic, Metadata: maps.Clone(c.cfg.SubscribeMetadata)}, h)
	}()
	timer := time.NewTimer(c.cfg.CallTimeout)
	defer timer.Stop()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Subscribe to %q: %v", topic, err)
		}
	case <-timer.C:
		t.Fatalf("Subscribe to %q did not return within %s (Config.CallTimeout)", topic, c.cfg.CallTimeout)
	}
}

// seqRange returns from, from+1, …, to-1.
func seqRange(from, to int) []int {
	s := make([]int, 0, max(to-from, 0))
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

// collector is a subscription's handler that records what it is given. It
// never touches a conformance.T: handlers run on the broker's goroutines,
// possibly after the case ended. Problems are kept for report.
type collector struct {
	c      *checker
	caseID string // the full name of the case that publishes
	topic  string
	// fail, if set, says whether delivery attempt (from 1) of message seq
	// must fail.
	fail func(seq, attempt int) bool

	changed chan struct{} // holds a token after any delivery

	mu       sync.Mutex
	attempts map[int]int      // seq → handler calls
	handled  map[int]int      // seq → successful handler calls
	firsts   map[string][]int // partition key → seqs in order of first delivery
	problems []string
	dropped  int // problems beyond maxProblems
}

const maxProblems = 10

func (c *checker) newCollector(t conformance.T, topic string) *collector {
	return &collector{
		c: c, caseID: t.Name(), topic: topic,
		changed:  make(chan struct{}, 1),
		attempts: map[int]int{}, handled: map[int]int{}, firsts: map[string][]int{},
	}
}

// handle is the subscription's Handler.
func (col *collector) handle(_ context.Context, msg *contract.Message) error {
	defer col.notify()
	var b body
	if err := json.Unmarshal(msg.Data, &b); err != nil || b.Run != col.c.run {
		col.problem("a message that is not this run's arrived on %q: %s", msg.Topic, short(msg.Data))
		return nil
	}
	if b.Case != col.caseID {
		col.problem("message %d of case %s arrived at a subscription of case %s", b.Seq, b.Case, col.caseID)
		return nil
	}
	if want := col.c.data(b.Case, b.Seq); !bytes.Equal(msg.Data, want) {
		col.problem("message %d: data %s, want %s", b.Seq, short(msg.Data), short(want))
	}
	if msg.Topic != col.topic {
		col.problem("message %d: Message.Topic = %q, want %q", b.Seq, msg.Topic, col.topic)
	}
	if !col.c.cfg.IgnoresContentType && msg.ContentType != contentType {
		col.problem("message %d: content type %q, want %q (set Config.IgnoresContentType if the broker cannot carry it)", b.Seq, msg.ContentType, contentType)
	}
	if got := msg.Metadata[seqKey]; !col.c.cfg.IgnoresMetadata && got != strconv.Itoa(b.Seq) {
		col.problem("message %d: metadata %s = %q, want %q (set Config.IgnoresMetadata if the broker cannot carry published metadata)", b.Seq, seqKey, got, strconv.Itoa(b.Seq))
	}

	col.mu.Lock()
	defer col.mu.Unlock()
	col.attempts[b.Seq]++
	attempt := col.attempts[b.Seq]
	if attempt == 1 {
		k := partitionKey(b.Seq)
		col.firsts[k] = append(col.firsts[k], b.Seq)
	}
	if col.fail != nil && col.fail(b.Seq, attempt) {
		return errDeliberate
	}
	col.handled[b.Seq]++
	return nil
}

func (col *collector) notify() {
	select {
	case col.changed <- struct{}{}:
	default:
	}
}

func (col *collector) problem(format string, args ...any) {
	col.mu.Lock()
	defer col.mu.Unlock()
	if len(col.problems) < maxProblems {
		col.problems = append(col.problems, fmt.Sprintf(format, args...))
	} else {
		col.dropped++
	}
}

// missing returns the seqs not yet handled successfully.
func (col *collector) missing(seqs []int) []int {
	col.mu.Lock()
	defer col.mu.Unlock()
	var out []int
	for _, s := range seqs {
		if col.handled[s] == 0 {
			out = append(out, s)
		}
	}
	return out
}

// got returns the seqs among seqs handled successfully at least once.
func (col *collector) got(seqs []int) []int {
	col.mu.Lock()
	defer col.mu.Unlock()
	var out []int
	for _, s := range seqs {
		if col.handled[s] > 0 {
			out = append(out, s)
		}
	}
	return out
}

// wait waits until every seq in seqs was handled by one of cols, within d
// or until ctx is done, and returns those that were not.
func wait(ctx context.Context, d time.Duration, seqs []int, cols ...*collector) []int {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		var missing []int
		for _, s := range seqs {
			found := false
			for _, col := range cols {
				if len(col.got([]int{s})) > 0 {
					found = true
					break
				}
			}
			if !found {
				missing = append(missing, s)
			}
		}
		if len(missing) == 0 {
			return nil
		}
		cases := make([]<-chan struct{}, len(cols))
		for i, col := range cols {
			cases[i] = col.changed
		}
		if !waitAny(ctx, timer.C, cases) {
			return missing
		}
	}
}

// waitAny waits for a token on one of chans; false means timeout or ctx.
// Only the caller takes tokens: a goroutine forwarding them would, once the
// wait is over, take a token meant for the next wait and lose it, and that
// wait would then sleep through a delivery until the timeout.
func waitAny(ctx context.Context, timeout <-chan time.Time, chans []<-chan struct{}) bool {
	cases := make([]reflect.SelectCase, 0, len(chans)+2)
	cases = append(cases,
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timeout)},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())})
	for _, ch := range chans {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)})
	}
	chosen, _, _ := reflect.Select(cases)
	return chosen >= 2
}

// expect waits for seqs on cols and reports the missing ones and every
// problem the collectors saw.
func (c *checker) expect(t conformance.T, what string, seqs []int, cols ...*collector) {
	t.Helper()
	if missing := wait(t.Context(), c.cfg.MaxReadDuration, seqs, cols...); len(missing) > 0 {
		t.Errorf("%s: %d of %d messages not received within %s (Config.MaxReadDuration): %v", what, len(missing), len(seqs), c.cfg.MaxReadDuration, abbreviate(missing))
	}
	for _, col := range cols {
		col.report(t)
	}
}

// report turns the problems col saw since the last report into failures of
// t.
func (col *collector) report(t conformance.T) {
	t.Helper()
	col.mu.Lock()
	problems, dropped := slices.Clone(col.problems), col.dropped
	col.problems, col.dropped = col.problems[:0], 0
	col.mu.Unlock()
	for _, p := range problems {
		t.Errorf("%s", p)
	}
	if dropped > 0 {
		t.Errorf("… and %d more problems", dropped)
	}
}

func abbreviate(seqs []int) string {
	if len(seqs) > 20 {
		return fmt.Sprintf("%v…", seqs[:20])
	}
	return fmt.Sprint(seqs)
}

func short(b []byte) string {
	if len(b) > 120 {
		return fmt.Sprintf("%q…", b[:120])
	}
	return fmt.Sprintf("%q", b)
}
