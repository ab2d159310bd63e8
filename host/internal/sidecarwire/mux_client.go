package sidecarwire

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wapr-dev/wapr/host/internal/api"
	"github.com/wapr-dev/wapr/host/internal/rawsock"
)

// janitorInterval is how often a MuxClient looks for idle connections.
const janitorInterval = idleTimeout / 3

// expireInterval is how often a connection ends the calls whose
// defaultTimeout passed: such a call ends up to this much late.
const expireInterval = time.Second

// callBounds bounds the calls whose ctx has no deadline: each ends once
// timeout has passed, found by a pass over its connection every interval.
// Tests shorten them (export_test.go).
type callBounds struct {
	timeout, interval time.Duration
}

var defaultBounds = callBounds{timeout: defaultTimeout, interval: expireInterval}

// maxAnswer is the largest answer message a MuxClient takes.
const maxAnswer = MaxResponseBodySize + envelope

// MuxClient is the calling end of the mux wire (mux.go): one connection to
// each called sidecar, opened on the first call to it and kept while calls
// use it, carrying every call in flight. It is safe for concurrent use.
type MuxClient struct {
	// other calls the sidecars that answer in HTTP/2 (daprd); nil: they
	// are unreachable. log says when a peer turns out to be one.
	other api.SidecarChannel
	log   *slog.Logger

	bounds callBounds

	mu      sync.Mutex // guards peers and closed
	peers   map[string]*muxPeer
	closed  bool
	janitor chan struct{} // closed by Close; nil until the first peer
}

// muxPeer is the connection to one sidecar, and its dialling.
type muxPeer struct {
	addr string
	// http2: the sidecar answered the preface in HTTP/2; calls go to the
	// client's other channel.
	http2 atomic.Bool

	mu      sync.Mutex // guards the fields below
	conn    *muxConn   // nil: none yet, or it failed
	dialing chan struct{}
	dialErr error // of the last dial
}

// muxConn is the calling end of one connection.
type muxConn struct {
	nc      net.Conn
	timeout time.Duration // of a call whose ctx has no deadline
	w       frameWriter
	lastUse atomic.Int64  // unix nanoseconds of the last call started
	closed  chan struct{} // closed when the connection fails

	mu      sync.Mutex // guards the fields below
	pending map[uint32]*muxCall
	next    uint32
	err     error // why the connection failed; set once
	goAway  bool  // the sidecar is shutting down: no new calls
}

// muxCall is one call waiting for its answer. Whoever takes a call out of
// its connection's pending calls sets msg or err and then sends done its
// token; the caller takes the token, or takes the call out itself, before
// the call goes back to callPool.
type muxCall struct {
	done     chan struct{} // a token once msg or err is set
	msg      *api.Buffer
	err      error
	deadline int64 // unix nanoseconds past which the connection ends the call; 0: ctx bounds it
}

// callPool keeps muxCalls, each with its channel, for reuse.
var callPool = sync.Pool{New: func() any { return &muxCall{done: make(chan struct{}, 1)} }}

var _ api.SidecarChannel = (*MuxClient)(nil)

// NewMuxClient returns a client with no connection yet.
func NewMuxClient() *MuxClient {
	return &MuxClient{peers: map[string]*muxPeer{}, bounds: defaultBounds}
}

// NewMuxClientWith returns a client that calls the sidecars answering the
// mux preface in HTTP/2 (daprd sidecars: sniff.go) through other, found on
// the first call to each and remembered while the client keeps the address;
// log (nil: slog.Default) tells of each such peer once. Close closes other
// too when it has a Close method.
func NewMuxClientWith(other api.SidecarChannel, log *slog.Logger) *MuxClient {
	if log == nil {
		log = slog.Default()
	}
	return &MuxClient{peers: map[string]*muxPeer{}, other: other, log: log, bounds: defaultBounds}
}

// Call forwards req to the sidecar at addr.
//
// Errors wrap api.ErrSidecarUnreachable when no connection could be opened,
// or the connection closed before the answer came, or the called sidecar
// began shutting down before taking the call; never when ctx ended. A
// misroute wraps api.ErrMisrouted; any other error InvokeLocal returned on
// the called sidecar comes back as an *api.Error.
//
// A ctx without a deadline gets defaultTimeout, which the connection
// enforces (expire) rather than a context and timer of every call's own.
func (c *MuxClient) Call(ctx context.Context, addr string, req *api.InvokeRequest) (*api.InvokeResponse, error) {
	_, bounded := ctx.Deadline()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("calling the sidecar at %s: %w", addr, err)
	}
	p, err := c.peer(addr)
	if err != nil {
		return nil, fmt.Errorf("calling the sidecar at %s: %w: %v", addr, api.ErrSidecarUnreachable, err)
	}
	if p.http2.Load() {
		return c.other.Call(ctx, addr, req)
	}
	var cc *muxConn
	var id uint32
	var call *muxCall
	for {
		if cc, err = p.connect(ctx, c.bounds); err != nil {
			if errors.Is(err, errHTTP2Peer) && c.other != nil {
				if p.http2.CompareAndSwap(false, true) {
					c.log.Info("the sidecar answers in HTTP/2, not the mux wire (a daprd): calling it with dapr.proto.internals.v1", "address", addr)
				}
				return c.other.Call(ctx, addr, req)
			}
			if ctx.Err() == nil {
				err = fmt.Errorf("%w: %v", api.ErrSidecarUnreachable, err)
			}
			return nil, fmt.Errorf("calling the sidecar at %s: %w", addr, err)
		}
		if id, call = cc.start(!bounded); call != nil {
			break
		}
		p.forget(cc) // it failed or is going away: dial another
	}
	if err := cc.w.send(id, func(b []byte) []byte { return appendRequest(b, req) }); err != nil {
		cc.fail(err)
	}
	if done := ctx.Done(); done == nil {
		<-call.done
	} else {
		select {
		case <-call.done:
		case <-done:
			if cc.cancel(id) {
				callPool.Put(call)
				cc.sendCancel(id)
				return nil, fmt.Errorf("calling the sidecar at %s: %w", addr, ctx.Err())
			}
			<-call.done // the answer came meanwhile
		}
	}
	msg, err := call.msg, call.err
	call.msg, call.err = nil, nil
	callPool.Put(call)
	if err != nil {
		return nil, fmt.Errorf("calling the sidecar at %s: %w", addr, err)
	}
	var res response
	if err := decodeResponse(msg.B, &res); err != nil {
		msg.Release()
		return nil, fmt.Errorf("calling the sidecar at %s: %w", addr, err)
	}
	if res.res != nil {
		res.res.Buffer = msg // its Body is a slice of msg; its strings are copies
	} else {
		msg.Release()
	}
	return res.result(addr)
}

// peer returns the peer of addr, adding it on first use.
func (c *MuxClient) peer(addr string) (*muxPeer, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errClosed
	}
	p := c.peers[addr]
	if p == nil {
		if len(c.peers) >= maxAddresses {
			c.dropIdle(time.Now().UnixNano()+1, true)
		}
		p = &muxPeer{addr: addr}
		c.peers[addr] = p
		if c.janitor == nil {
			c.janitor = make(chan struct{})
			go c.sweep(c.janitor)
		}
	}
	return p, nil
}

// connect returns the peer's connection, dialling one, whose calls b
// bounds, when there is none.
// Callers arriving during a dial wait for it and share its outcome.
func (p *muxPeer) connect(ctx context.Context, b callBounds) (*muxConn, error) {
	p.mu.Lock()
	for {
		if p.conn != nil {
			cc := p.conn
			p.mu.Unlock()
			return cc, nil
		}
		if ch := p.dialing; ch != nil {
			p.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			p.mu.Lock()
			if p.conn == nil && p.dialErr != nil {
				err := p.dialErr
				p.mu.Unlock()
				return nil, err
			}
			continue
		}
		ch := make(chan struct{})
		p.dialing = ch
		p.mu.Unlock()
		cc, err := dialMux(p.addr, b)
		p.mu.Lock()
		p.dialing, p.conn, p.dialErr = nil, cc, err
		close(ch)
		if err != nil {
			p.mu.Unlock()
			return nil, err
		}
	}
}

// forget drops cc as the peer's connection, if it still is.
func (p *muxPeer) forget(cc *muxConn) {
	p.mu.Lock()
	if p.conn == cc {
		p.conn = nil
	}
	p.mu.Unlock()
}

// dialMux opens a connection to the sidecar at addr and starts reading its
// answers and ending its calls past their bounds.
func dialMux(addr string, b callBounds) (*muxConn, error) {
	nc, err := net.DialTimeout("tcp", addr, dialTimeout)
	if err != nil {
		return nil, err
	}
	nc = rawsock.Conn(nc)
	if err := exchangePreface(nc); err != nil {
		nc.Close()
		return nil, err
	}
	cc := &muxConn{nc: nc, timeout: b.timeout, w: frameWriter{nc: nc}, pending: map[uint32]*muxCall{}, closed: make(chan struct{})}
	cc.lastUse.Store(time.Now().UnixNano())
	go cc.read()
	go cc.expireEvery(b.interval)
	return cc, nil
}

// start registers a new call, with cc's timeout from now when timed; it
// returns a nil call when the connection can take no more.
func (cc *muxConn) start(timed bool) (uint32, *muxCall) {
	call := callPool.Get().(*muxCall)
	now := time.Now().UnixNano()
	call.deadline = 0
	if timed {
		call.deadline = now + int64(cc.timeout)
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.err != nil || cc.goAway {
		callPool.Put(call)
		return 0, nil
	}
	cc.next++
	if cc.next == 0 {
		cc.next++
	}
	for cc.pending[cc.next] != nil { // a call 2^32 calls old still waits
		cc.next++
	}
	cc.pending[cc.next] = call
	cc.lastUse.Store(now)
	return cc.next, call
}

// sendCancel tells the called sidecar that call id is given up, best
// effort: a connection that fails meanwhile ends the call there anyway.
func (cc *muxConn) sendCancel(id uint32) {
	cc.w.send(id, func(b []byte) []byte { return append(b, kindCancel) })
}

// expireEvery ends, every interval until the connection fails, the calls
// whose deadline passed, as a context's deadline would: they fail with
// context.DeadlineExceeded and the called sidecar is told.
func (cc *muxConn) expireEvery(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-cc.closed:
			return
		case now := <-t.C:
			cc.expire(now.UnixNano())
		}
	}
}

// expire ends the calls whose deadline is before now and says how many.
func (cc *muxConn) expire(now int64) int {
	var late []uint32
	var calls []*muxCall
	cc.mu.Lock()
	for id, call := range cc.pending {
		if call.deadline != 0 && call.deadline < now {
			delete(cc.pending, id)
			late = append(late, id)
			calls = append(calls, call)
		}
	}
	cc.mu.Unlock()
	for i, call := range calls {
		cc.sendCancel(late[i])
		call.err = context.DeadlineExceeded
		call.done <- struct{}{}
	}
	return len(calls)
}

// cancel forgets call id; false when its answer already came.
func (cc *muxConn) cancel(id uint32) bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if _, ok := cc.pending[id]; !ok {
		return false
	}
	delete(cc.pending, id)
	return true
}

// read hands each answer to its call until the connection fails.
func (cc *muxConn) read() {
	r := newFrameReader(cc.nc)
	for {
		id, size, err := r.next()
		if err != nil {
			cc.fail(err)
			return
		}
		if size > maxAnswer {
			if err := r.skip(size); err != nil {
				cc.fail(err)
				return
			}
			cc.finish(id, nil, fmt.Errorf("the answer of %d bytes exceeds the limit of %d bytes", size, maxAnswer))
			continue
		}
		msg, err := r.message(size)
		if err != nil {
			cc.fail(err)
			return
		}
		if msg.B[0] == kindGoAway {
			msg.Release()
			cc.goingAway(id)
			continue
		}
		cc.finish(id, msg, nil)
	}
}

// finish ends call id with msg or err; an id no call waits for (one whose
// ctx ended) is ignored.
func (cc *muxConn) finish(id uint32, msg *api.Buffer, err error) {
	cc.mu.Lock()
	call := cc.pending[id]
	delete(cc.pending, id)
	cc.mu.Unlock()
	if call != nil {
		call.msg, call.err = msg, err
		call.done <- struct{}{}
	} else {
		msg.Release()
	}
}

// goingAway takes the called sidecar's word that it took the calls up to
// last and no later one: those fail as unreachable, to be sent elsewhere.
func (cc *muxConn) goingAway(last uint32) {
	cc.mu.Lock()
	cc.goAway = true
	var dropped []*muxCall
	for id, call := range cc.pending {
		if int32(id-last) > 0 {
			delete(cc.pending, id)
			dropped = append(dropped, call)
		}
	}
	cc.mu.Unlock()
	for _, call := range dropped {
		call.err = fmt.Errorf("%w: the sidecar is shutting down", api.ErrSidecarUnreachable)
		call.done <- struct{}{}
	}
}

// fail closes the connection and fails every call waiting on it as
// unreachable: none of them got an answer.
func (cc *muxConn) fail(err error) {
	cc.mu.Lock()
	first := cc.err == nil
	if first {
		cc.err = err
	}
	pending := cc.pending
	cc.pending = map[uint32]*muxCall{}
	cc.mu.Unlock()
	if first {
		close(cc.closed)
	}
	cc.nc.Close()
	for _, call := range pending {
		call.err = fmt.Errorf("%w: the connection closed before the answer: %v", api.ErrSidecarUnreachable, err)
		call.done <- struct{}{}
	}
}

// idleSince reports whether no call waits on cc and none started after t.
func (cc *muxConn) idleSince(t int64) bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return len(cc.pending) == 0 && cc.lastUse.Load() < t
}

// sweep closes the connections idle for idleTimeout, until stop closes.
func (c *MuxClient) sweep(stop chan struct{}) {
	t := time.NewTicker(janitorInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			c.mu.Lock()
			c.dropIdle(now.Add(-idleTimeout).UnixNano(), false)
			c.mu.Unlock()
		}
	}
}

// dropIdle closes the connections with no call since before (unix
// nanoseconds) and none waiting. With forget it also forgets the peers left
// without a connection (a call that already holds one may still dial, and
// its connection then is closed only by the called sidecar or the process's
// end: forget is for when there are too many). c.mu is held.
func (c *MuxClient) dropIdle(before int64, forget bool) {
	for addr, p := range c.peers {
		p.mu.Lock()
		cc := p.conn
		if cc != nil && cc.idleSince(before) {
			p.conn = nil
			cc.fail(errIdle)
			cc = nil
		}
		if forget && cc == nil && p.dialing == nil {
			delete(c.peers, addr)
		}
		p.mu.Unlock()
	}
}

var errIdle = errors.New("idle")

// Close closes every connection; calls in flight fail, and later calls fail
// with ErrSidecarUnreachable. Closing twice does nothing more.
func (c *MuxClient) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	if o, ok := c.other.(interface{ Close() }); ok {
		o.Close()
	}
	if c.janitor != nil {
		close(c.janitor)
	}
	for addr, p := range c.peers {
		p.mu.Lock()
		if p.conn != nil {
			p.conn.fail(errClosed)
			p.conn = nil
		}
		p.mu.Unlock()
		delete(c.peers, addr)
	}
}
