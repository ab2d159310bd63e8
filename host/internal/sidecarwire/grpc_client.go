package sidecarwire

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/wapr-dev/wapr/host/internal/api"
)

const (
	// connsPerAddress is how many HTTP/2 connections carry the calls to one
	// sidecar; calls take them in turn. One connection multiplexes every
	// call in flight, which is gRPC's point; more spread the framing work
	// of both ends over more goroutines.
	connsPerAddress = 1
	// maxAddresses bounds the addresses kept; past it, the idle ones are
	// dropped when a new one is added.
	maxAddresses = 1024
	// defaultTimeout bounds a call whose ctx has no deadline, as the HTTP
	// wire and the app channel do.
	defaultTimeout = 60 * time.Second
	// dialTimeout bounds opening a connection, as the HTTP wire does.
	dialTimeout = 3 * time.Second
	// idleTimeout closes the connections to a sidecar no call used for that
	// long, as the HTTP wire does; the server never closes one itself.
	idleTimeout = 30 * time.Second
)

// GRPCClient is the calling end of the channel: gRPC unary calls over
// connsPerAddress HTTP/2 connections per called sidecar, opened on
// the first call to it and kept (insecure: the channel is plaintext, as the
// HTTP wire). It is safe for concurrent use.
type GRPCClient struct {
	conns sync.Map // address → *connSet; read without mu

	mu     sync.Mutex // guards adding and removing conns, n and closed
	n      int
	closed bool
}

// connSet is the connections to one sidecar.
type connSet struct {
	ccs  [connsPerAddress]*grpc.ClientConn
	next atomic.Uint32
}

func (s *connSet) pick() *grpc.ClientConn {
	if len(s.ccs) == 1 {
		return s.ccs[0]
	}
	return s.ccs[s.next.Add(1)%uint32(len(s.ccs))]
}

func (s *connSet) close() {
	for _, cc := range s.ccs {
		if cc != nil {
			cc.Close()
		}
	}
}

func (s *connSet) idle() bool {
	for _, cc := range s.ccs {
		if st := cc.GetState(); st != connectivity.Idle && st != connectivity.TransientFailure {
			return false
		}
	}
	return true
}

var _ api.SidecarChannel = (*GRPCClient)(nil)

var errClosed = errors.New("sidecarwire: the sidecar client is closed")

// NewGRPCClient returns a client with no connection yet.
func NewGRPCClient() *GRPCClient { return &GRPCClient{} }

// Call forwards req to the sidecar at addr.
//
// Errors wrap api.ErrSidecarUnreachable when gRPC says Unavailable (no
// connection could be opened, or the connection closed before the answer:
// the called sidecar never answers Unavailable itself) or when the call
// was cancelled by this client closing the connection before any stream
// started on it; never when ctx ended. A misroute wraps api.ErrMisrouted;
// any other error InvokeLocal returned on the called sidecar comes back as
// an *api.Error with its Code and the message of its cause (the caller's
// Invoke says "failed to invoke" itself).
func (c *GRPCClient) Call(ctx context.Context, addr string, req *api.InvokeRequest) (*api.InvokeResponse, error) {
	set, err := c.connSet(addr)
	if err != nil {
		return nil, fmt.Errorf("calling the sidecar at %s: %w: %v", addr, api.ErrSidecarUnreachable, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultTimeout)
		defer cancel()
	}
	cc := set.pick()
	var p peer.Peer // set once a stream started on a connection
	var res response
	if err := cc.Invoke(ctx, invokeName, req, &res, grpc.Peer(&p)); err != nil {
		if ctx.Err() == nil {
			switch status.Code(err) {
			case codes.Unavailable:
				if p.Addr == nil {
					// The connection could not be opened: a later call
					// opens a new one at once rather than after gRPC's
					// reconnection backoff.
					c.drop(addr, set)
				}
				err = fmt.Errorf("%w: %v", api.ErrSidecarUnreachable, err)
			case codes.Canceled:
				if p.Addr == nil {
					err = fmt.Errorf("%w: %v", api.ErrSidecarUnreachable, err)
				}
			}
		}
		return nil, fmt.Errorf("calling the sidecar at %s: %w", addr, err)
	}
	return res.result(addr)
}

// connSet returns the connections to addr, creating them (unconnected) on
// first use.
func (c *GRPCClient) connSet(addr string) (*connSet, error) {
	if s, ok := c.conns.Load(addr); ok {
		return s.(*connSet), nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errClosed
	}
	if s, ok := c.conns.Load(addr); ok {
		return s.(*connSet), nil
	}
	if c.n >= maxAddresses {
		c.conns.Range(func(k, v any) bool {
			if s := v.(*connSet); s.idle() {
				c.conns.Delete(k)
				c.n--
				s.close()
			}
			return true
		})
	}
	s := &connSet{}
	for i := range s.ccs {
		// passthrough: the address is dialled as given, with no resolver
		// or balancer choosing between addresses.
		cc, err := grpc.NewClient("passthrough:///"+addr,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(
				grpc.ForceCodecV2(codec{}),
				grpc.MaxCallRecvMsgSize(MaxResponseBodySize+envelope),
			),
			grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.DefaultConfig, MinConnectTimeout: dialTimeout}),
			grpc.WithIdleTimeout(idleTimeout),
		)
		if err != nil {
			s.close()
			return nil, err
		}
		s.ccs[i] = cc
	}
	c.conns.Store(addr, s)
	c.n++
	return s, nil
}

// drop closes the connections to addr if they are still s.
func (c *GRPCClient) drop(addr string, s *connSet) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conns.CompareAndDelete(addr, s) {
		c.n--
		s.close()
	}
}

// Close closes every connection; calls in flight fail, and later calls fail
// with ErrSidecarUnreachable. Closing twice does nothing more.
func (c *GRPCClient) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	c.conns.Range(func(k, v any) bool {
		c.conns.Delete(k)
		v.(*connSet).close()
		return true
	})
	c.n = 0
}
