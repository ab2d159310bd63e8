package sidecarwire

import (
	"context"
	"errors"
	"net"
	"sync"
)

// A sidecar's port speaks two protocols: wapr's mux wire and, for daprd
// sidecars, HTTP/2 (gRPC's dapr.proto.internals.v1, package internalsgrpc).
// The called end tells them apart by the first byte a connection sends: the
// mux preface starts with 'w', HTTP/2's client preface ("PRI * HTTP/2.0…")
// with 'P'. The byte is read once per connection, never per call, so the mux
// wire's calls cost the same as on a port of its own
// (BenchmarkWire/mux, docs/building-blocks/invoke.md).
//
// The calling end finds out the other way round: a gRPC server sends its
// SETTINGS frame as soon as a connection opens, so a MuxClient reading the
// called end's preface reads an HTTP/2 frame header from a daprd and turns
// to its fallback channel for that address (NewMuxClient's other).
const http2PrefaceStart = 'P'

// HTTP2Server serves the HTTP/2 connections of a MuxServer's port: Serve
// gets a listener whose Accept returns them, Shutdown stops it. An
// *internalsgrpc.Server is one.
type HTTP2Server interface {
	Serve(ln net.Listener) error
	Shutdown(ctx context.Context) error
}

// errHTTP2Peer: the called end answered the mux preface with HTTP/2 (a
// daprd, or a wapr on another wire).
var errHTTP2Peer = errors.New("the peer speaks HTTP/2, not the mux wire")

// isHTTP2Settings reports whether b starts with the header of an HTTP/2
// SETTINGS frame on stream 0: 3 bytes of length, type 0x4, flags 0 (not an
// ACK), stream id 0. A gRPC server's first frame is one.
func isHTTP2Settings(b []byte) bool {
	return len(b) >= 9 && b[3] == 0x4 && b[4] == 0 && b[5] == 0 && b[6] == 0 && b[7] == 0 && b[8] == 0
}

// prefixConn is a connection whose first bytes were already read: Read
// returns them first.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// connListener hands the connections a MuxServer sniffed as HTTP/2 to an
// HTTP2Server. It is safe for concurrent use.
type connListener struct {
	addr  net.Addr
	conns chan net.Conn

	closeOnce sync.Once
	closed    chan struct{}
}

func newConnListener(addr net.Addr) *connListener {
	return &connListener{addr: addr, conns: make(chan net.Conn), closed: make(chan struct{})}
}

// deliver hands nc to Accept; false (nc not taken) once the listener is
// closed.
func (l *connListener) deliver(nc net.Conn) bool {
	select {
	case l.conns <- nc:
		return true
	case <-l.closed:
		return false
	}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case nc := <-l.conns:
		return nc, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Close makes Accept fail; closing twice does nothing more.
func (l *connListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }
