package sidecarwire

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	"github.com/wapr-dev/wapr/host/internal/api"
	"github.com/wapr-dev/wapr/host/internal/rawsock"
)

// MuxServer is the called end of the mux wire (mux.go): it serves the
// invocations other sidecars forward, for this sidecar's app. It is safe for
// concurrent use.
type MuxServer struct {
	api    *api.API
	log    *slog.Logger
	maxMsg int // the largest request message taken

	work      chan muxTask // to the workers
	startOnce sync.Once
	stop      chan struct{} // closed by Shutdown: the workers end

	h2     HTTP2Server   // serves the HTTP/2 connections; nil: refused
	h2ln   *connListener // hands them to h2; set by the first Serve
	h2done chan struct{} // closed when h2's Serve returned, with h2err
	h2err  error

	inflight atomic.Int64  // calls taken and not answered yet
	idle     chan struct{} // a token once inflight drops to 0 while closing

	mu      sync.Mutex // guards the fields below
	closing bool
	lns     map[net.Listener]struct{}
	conns   map[*muxServerConn]struct{}
}

// muxTask is one call to serve; ctx ends when the caller gives it up.
type muxTask struct {
	ctx context.Context
	c   *muxServerConn
	id  uint32
	buf *api.Buffer // the request (message), released once answered
}

// muxServerConn is the called end of one connection.
type muxServerConn struct {
	nc net.Conn
	w  frameWriter

	mu       sync.Mutex                    // guards the fields below
	draining bool                          // Shutdown began: new calls are dropped
	last     uint32                        // the id of the last call taken
	calls    map[uint32]context.CancelFunc // taken, neither answered nor given up; ends the call's context
}

// NewMuxServer returns a server calling a.InvokeLocal, taking request bodies
// of at most maxBody bytes (<= 0: 4 MiB); a larger request gets an error
// answer and never reaches the app. log may be nil.
func NewMuxServer(a *api.API, maxBody int, log *slog.Logger) *MuxServer {
	if maxBody <= 0 {
		maxBody = defaultMaxRequestBodySize
	}
	if log == nil {
		log = slog.Default()
	}
	return &MuxServer{
		api: a, log: log, maxMsg: maxBody + envelope,
		work: make(chan muxTask), stop: make(chan struct{}), idle: make(chan struct{}, 1),
		lns: map[net.Listener]struct{}{}, conns: map[*muxServerConn]struct{}{},
	}
}

// ServeHTTP2 makes h serve the connections that open with HTTP/2's preface
// (sniff.go); call it before Serve. Shutdown shuts h down too.
func (s *MuxServer) ServeHTTP2(h HTTP2Server) { s.h2 = h }

// Serve accepts connections on ln until Shutdown; it returns nil once
// Shutdown has stopped it, even when Shutdown came first (ln is closed then).
func (s *MuxServer) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	s.startOnce.Do(func() {
		for range streamWorkers {
			go s.worker()
		}
		if s.h2 != nil {
			s.mu.Lock()
			s.h2ln = newConnListener(ln.Addr())
			s.h2done = make(chan struct{})
			s.mu.Unlock()
			go func() {
				s.h2err = s.h2.Serve(s.h2ln)
				close(s.h2done)
			}()
		}
	})
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			delete(s.lns, ln)
			s.mu.Unlock()
			if closing {
				return nil
			}
			return err
		}
		go s.serveConn(rawsock.Conn(nc))
	}
}

// serveConn reads the calls of one connection until it closes, or hands
// an HTTP/2 connection to the HTTP2Server.
func (s *MuxServer) serveConn(nc net.Conn) {
	first, err := readFirst(nc)
	if err == nil && first == http2PrefaceStart && s.h2ln != nil {
		if !s.h2ln.deliver(&prefixConn{Conn: nc, prefix: []byte{first}}) {
			nc.Close()
		}
		return
	}
	defer nc.Close()
	if err == nil {
		err = answerPreface(nc, first)
	}
	if err != nil {
		s.log.Debug("sidecar connection refused", "remote", nc.RemoteAddr().String(), "error", err)
		return
	}
	c := &muxServerConn{nc: nc, w: frameWriter{nc: nc}, calls: map[uint32]context.CancelFunc{}}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.cancelAll() // the caller is gone: nobody waits for these
	}()

	r := newFrameReader(nc)
	for {
		id, size, err := r.next()
		if err != nil {
			return
		}
		if size > s.maxMsg {
			if err := r.skip(size); err != nil {
				return
			}
			if _, ok := s.take(c, id); ok {
				s.answer(c, id, &response{err: &remoteError{code: api.CodeDirectInvoke,
					message: fmt.Sprintf("the request of %d bytes exceeds the limit of %d bytes", size, s.maxMsg)}})
			}
			continue
		}
		buf, err := r.message(size)
		if err != nil {
			return
		}
		if buf.B[0] == kindCancel {
			buf.Release()
			if c.finish(id) {
				s.done()
			}
			continue
		}
		ctx, ok := s.take(c, id)
		if !ok {
			buf.Release()
			continue // shutting down: the caller was told (kindGoAway)
		}
		t := muxTask{ctx: ctx, c: c, id: id, buf: buf}
		select {
		case s.work <- t:
		default:
			go s.serve(t) // every worker is busy
		}
	}
}

// take counts the call id of c in flight, unless c is draining, and
// returns the call's context, which ends when the call does (answered,
// given up by the caller, or its connection closed).
func (s *MuxServer) take(c *muxServerConn, id uint32) (context.Context, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.draining {
		return nil, false
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.last = id
	c.calls[id] = cancel
	s.inflight.Add(1)
	return ctx, true
}

// finish ends call id of c and its context; false when it had ended
// already (answered, or given up by the caller).
func (c *muxServerConn) finish(id uint32) bool {
	c.mu.Lock()
	cancel, ok := c.calls[id]
	delete(c.calls, id)
	c.mu.Unlock()
	if ok {
		cancel()
	}
	return ok
}

// cancelAll ends the context of every call of c still in flight; they stay
// counted until answered.
func (c *muxServerConn) cancelAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cancel := range c.calls {
		cancel()
	}
}

// done counts a call out of those in flight.
func (s *MuxServer) done() {
	if s.inflight.Add(-1) == 0 {
		select {
		case s.idle <- struct{}{}:
		default:
		}
	}
}

func (s *MuxServer) worker() {
	for {
		select {
		case t := <-s.work:
			s.serve(t)
		case <-s.stop:
			return
		}
	}
}

// serve serves one call and sends its answer. The app call has copied the
// request's body by the time invokeLocal returns, and answer copies the
// answer into the connection's buffer (so an answer that aliased the
// request would still go out whole); the request's buffer, and the
// answer's, go back to the pool after both.
func (s *MuxServer) serve(t muxTask) {
	var req api.InvokeRequest
	var res *response
	if err := decodeRequest(t.buf.B, &req); err != nil {
		res = &response{err: &remoteError{code: api.CodeMalformedRequest, message: err.Error()}}
	} else {
		res = invokeLocal(t.ctx, s.api, s.log, &req)
	}
	s.answer(t.c, t.id, res)
	if res.res != nil {
		res.res.Release()
	}
	t.buf.Release()
}

// answer sends res for call id of c, and ends the call, unless the caller
// gave it up.
func (s *MuxServer) answer(c *muxServerConn, id uint32, res *response) {
	if !c.finish(id) {
		return
	}
	c.w.send(id, func(b []byte) []byte { return appendResponse(b, res) })
	s.done()
}

// Shutdown stops accepting connections and calls (telling every caller which
// calls it took), and waits for the calls in flight to be answered until ctx
// is done; then it closes every connection, failing the calls still in
// flight, and returns ctx's error without waiting for their app calls, which
// end by the app channel's timeout. It closes the listeners Serve was given.
func (s *MuxServer) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	first := !s.closing
	s.closing = true
	lns, conns := s.lns, s.conns
	s.lns, s.conns = map[net.Listener]struct{}{}, map[*muxServerConn]struct{}{}
	s.mu.Unlock()
	if first {
		close(s.stop)
	}
	for ln := range lns {
		ln.Close()
	}
	for c := range conns {
		c.mu.Lock()
		c.draining = true
		last := c.last
		c.mu.Unlock()
		c.w.send(last, func(b []byte) []byte { return append(b, kindGoAway) })
	}
	var err error
	for s.inflight.Load() > 0 && err == nil {
		select {
		case <-s.idle:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	for c := range conns {
		if err != nil {
			c.nc.Close()
		} else {
			c.w.closeWhenWritten()
		}
	}
	if err != nil {
		err = fmt.Errorf("sidecar calls still in flight: %w", err)
	}
	if s.h2 != nil {
		if herr := s.h2.Shutdown(ctx); herr != nil && err == nil {
			err = fmt.Errorf("HTTP/2 calls still in flight: %w", herr)
		}
		s.mu.Lock()
		ln, served := s.h2ln, s.h2done
		s.mu.Unlock()
		if ln != nil {
			ln.Close()
			<-served
			if s.h2err != nil && err == nil {
				err = s.h2err
			}
		}
	}
	return err
}
