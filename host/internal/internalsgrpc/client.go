package internalsgrpc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	internalv1pb "github.com/dapr/dapr/pkg/proto/internals/v1"
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
	// defaultTimeout bounds a call whose ctx has no deadline, as wapr's
	// own wires do.
	defaultTimeout = 60 * time.Second
	dialTimeout    = 3 * time.Second
	// idleTimeout closes a connection no call used for that long.
	idleTimeout = 30 * time.Second
	// maxAddresses bounds the connections kept; past it the idle ones are
	// closed when a new address is added.
	maxAddresses = 1024
)

// Client calls other sidecars over dapr.proto.internals.v1: an actor call
// (an invocation carrying api.ActorCallHeader) as CallActor, any other
// invocation as CallLocal. One plaintext HTTP/2 connection per called
// sidecar, opened on the first call and closed after idleTimeout without
// calls (daprd's own connections are plaintext without Sentry; mTLS is not
// supported). It is safe for concurrent use.
type Client struct {
	mu     sync.Mutex
	conns  map[string]*grpc.ClientConn
	closed bool
}

var _ api.SidecarChannel = (*Client)(nil)

// NewClient returns a client with no connection yet.
func NewClient() *Client { return &Client{conns: map[string]*grpc.ClientConn{}} }

var errClosed = errors.New("internalsgrpc: the client is closed")

// Call sends req to the sidecar at addr.
//
// Errors wrap api.ErrSidecarUnreachable when gRPC says Unavailable (no
// connection, or it closed before the answer). For an actor call, daprd's
// "remote actor moved" and "placement is disseminating" come back as an
// *api.Error with CodeActorNoAddress (look the actor up again); any other
// error of the called sidecar as an *api.Error with CodeActorInvokeMethod,
// or CodeDirectInvoke for an invocation, and its message.
func (c *Client) Call(ctx context.Context, addr string, req *api.InvokeRequest) (*api.InvokeResponse, error) {
	in, actor, err := requestOf(req)
	if err != nil {
		return nil, &api.Error{Code: api.CodeMalformedRequest, Message: err.Error(), Err: err}
	}
	cc, err := c.conn(addr)
	if err != nil {
		return nil, fmt.Errorf("calling the sidecar at %s: %w: %v", addr, api.ErrSidecarUnreachable, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultTimeout)
		defer cancel()
	}
	client := internalv1pb.NewServiceInvocationClient(cc)
	var out *internalv1pb.InternalInvokeResponse
	var p peer.Peer // set once a stream started on a connection
	opts := []grpc.CallOption{grpc.MaxCallRecvMsgSize(maxResponseBody + envelope), grpc.Peer(&p)}
	if actor {
		out, err = client.CallActor(ctx, in, opts...)
	} else {
		out, err = client.CallLocal(ctx, in, opts...)
	}
	if err != nil {
		if p.Addr == nil && status.Code(err) == codes.Unavailable {
			// No connection could be opened: a later call opens a new one
			// at once rather than after gRPC's reconnection backoff.
			c.drop(addr, cc)
		}
		return nil, fmt.Errorf("calling the sidecar at %s: %w", addr, callError(ctx, err, actor))
	}
	return invokeResponseOf(out), nil
}

// callError maps a failed call's gRPC error as Call documents.
func callError(ctx context.Context, err error, actor bool) error {
	if ctx.Err() != nil {
		return err
	}
	st := status.Convert(err)
	msg := st.Message()
	switch {
	case st.Code() == codes.Unavailable:
		return fmt.Errorf("%w: %v", api.ErrSidecarUnreachable, err)
	case isMisrouted(st):
		return fmt.Errorf("%w: %s", api.ErrMisrouted, msg)
	case actor && st.Code() == codes.Internal &&
		(strings.HasSuffix(msg, "remote actor moved") || strings.HasSuffix(msg, ": placement is disseminating")):
		return &api.Error{Code: api.CodeActorNoAddress, Message: msg, Err: err}
	case actor:
		return &api.Error{Code: api.CodeActorInvokeMethod, Message: msg, Err: err}
	default:
		return &api.Error{Code: api.CodeDirectInvoke, Message: msg, Err: err}
	}
}

// conn returns the connection to addr, creating it (unconnected) on first
// use.
func (c *Client) conn(addr string) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errClosed
	}
	if cc := c.conns[addr]; cc != nil {
		return cc, nil
	}
	if len(c.conns) >= maxAddresses {
		for a, cc := range c.conns {
			if st := cc.GetState(); st == connectivity.Idle || st == connectivity.TransientFailure {
				cc.Close()
				delete(c.conns, a)
			}
		}
	}
	// passthrough: the address is dialled as given, with no resolver.
	cc, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.DefaultConfig, MinConnectTimeout: dialTimeout}),
		grpc.WithIdleTimeout(idleTimeout),
	)
	if err != nil {
		return nil, err
	}
	c.conns[addr] = cc
	return cc, nil
}

// drop closes the connection to addr if it is still cc.
func (c *Client) drop(addr string, cc *grpc.ClientConn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conns[addr] == cc {
		delete(c.conns, addr)
		cc.Close()
	}
}

// Close closes every connection; calls in flight fail, and later calls fail
// with ErrSidecarUnreachable. Closing twice does nothing more.
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for a, cc := range c.conns {
		cc.Close()
		delete(c.conns, a)
	}
}
