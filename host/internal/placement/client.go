package placement

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	"github.com/dapr/dapr/pkg/placement/hashing"
	v1pb "github.com/dapr/dapr/pkg/proto/placement/v1"
)

// ErrNoAddress: the placement tables know no host of the actor's type.
var ErrNoAddress = errors.New("no host of the actor type")

// Host is this sidecar as it reports itself to placement.
type Host struct {
	// Name is "ip:port" where other sidecars reach this one (its sidecar
	// channel); daprd reports its internal gRPC address here.
	Name string
	Port int64
	// AppID, Namespace: this sidecar's app; an empty Namespace is
	// reported as "default", as daprd does self-hosted. Placement keeps a
	// table per namespace.
	AppID, Namespace string
	// Entities are the actor types the app hosts (may be empty: a sidecar
	// that only calls actors still takes the tables).
	Entities []string
}

// Lookup is where an actor lives.
type Lookup struct {
	Address string // the owning sidecar's Host.Name
	AppID   string
	Local   bool // this sidecar hosts it
}

// ClientOptions configure a Client.
type ClientOptions struct {
	// Addresses are the placement servers, "host:port"; the client uses
	// the one that leads (the others refuse the stream), trying each in
	// turn.
	Addresses []string
	Host      Host
	// OnUpdate is called with each new set of tables, before this sidecar
	// acknowledges them to placement, so that actors it no longer owns are
	// deactivated first (daprd's HaltNonHosted): isLocal says whether an
	// actor belongs here under the new tables. It blocks the dissemination
	// round, so it must return (bounded by the drain timeout).
	OnUpdate func(ctx context.Context, isLocal func(actorType, actorID string) bool)
	// OnDisconnect is called when a stream placement had answered on
	// ends: placement then gives this sidecar's actors to others, so they
	// must stop here (daprd halts its actors too). Lookups wait for the
	// next round from then on.
	OnDisconnect func(ctx context.Context)
	Logger       *slog.Logger
}

// Client keeps a stream open to placement, follows its dissemination rounds
// (lock, update, unlock) and answers lookups from the tables of the last
// round. It is safe for concurrent use.
type Client struct {
	opts  ClientOptions
	log   *slog.Logger
	vnode *hashing.VirtualNodesCache

	mu     sync.Mutex
	tables map[string]*hashing.Consistent // actor type → ring
	// ready is closed once the first round has completed (unlock) and
	// while no round is between update and unlock; lookups wait on it.
	ready   chan struct{}
	isReady bool
	version uint64
	hosts   map[string]int // actor type → hosts in its ring (for reports)

	connected atomic.Bool // a stream is open and placement has answered on it

	cancel context.CancelFunc
	done   chan struct{}
}

// NewClient returns a client; Start connects it.
func NewClient(opts ClientOptions) *Client {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Host.Namespace == "" {
		// Placement requires one; daprd self-hosted reports "default"
		// (security.CurrentNamespace without NAMESPACE).
		opts.Host.Namespace = "default"
	}
	return &Client{
		opts:   opts,
		log:    opts.Logger,
		vnode:  hashing.NewVirtualNodesCache(),
		tables: map[string]*hashing.Consistent{},
		ready:  make(chan struct{}),
		hosts:  map[string]int{},
		done:   make(chan struct{}),
	}
}

// Start keeps a stream to placement open until Close, reconnecting with a
// backoff when it breaks.
func (c *Client) Start(ctx context.Context) {
	ctx, c.cancel = context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		defer close(c.done)
		backoff := 100 * time.Millisecond
		failures := 0 // in a row; only the first is a warning
		for i := 0; ctx.Err() == nil; i++ {
			addr := c.opts.Addresses[i%len(c.opts.Addresses)]
			started := time.Now()
			connected, err := c.session(ctx, addr)
			if ctx.Err() != nil {
				return
			}
			if connected {
				failures = 0
				c.suspend()
				if c.opts.OnDisconnect != nil {
					c.opts.OnDisconnect(ctx)
				}
			}
			failures++
			level := slog.LevelWarn
			if failures > 1 {
				level = slog.LevelDebug
			}
			c.log.Log(ctx, level, "no placement stream; retrying", "placement", addr, "error", err)
			if time.Since(started) > 10*time.Second {
				backoff = 100 * time.Millisecond
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 3*time.Second)
		}
	}()
}

// Close ends the stream (placement then drops this host from its tables)
// and waits for the client to stop, at most until ctx is done.
func (c *Client) Close(ctx context.Context) error {
	if c.cancel == nil {
		return nil
	}
	c.cancel()
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// session runs one stream: report, then follow orders until it breaks.
// connected tells whether placement took the report (sent an order).
func (c *Client) session(ctx context.Context, addr string) (connected bool, err error) {
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second}),
	)
	if err != nil {
		return connected, err
	}
	defer conn.Close()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := v1pb.NewPlacementClient(conn).ReportDaprStatus(sctx)
	if err != nil {
		return connected, err
	}
	h := c.opts.Host
	if err := stream.Send(&v1pb.Host{
		Name: h.Name, Port: h.Port, Entities: h.Entities, Id: h.AppID, Namespace: h.Namespace,
		Operation: v1pb.HostOperation_REPORT,
	}); err != nil {
		return connected, err
	}
	var current v1pb.HostOperation
	for {
		order, err := stream.Recv()
		if err != nil {
			return connected, err
		}
		if !connected {
			connected = true
			c.connected.Store(true)
			defer c.connected.Store(false)
			c.log.Info("connected to placement", "placement", addr, "entities", strings.Join(h.Entities, ","))
		}
		version := order.GetVersion()
		ack := func(op v1pb.HostOperation) error {
			return stream.Send(&v1pb.Host{Operation: op, Version: &version, Namespace: h.Namespace, Id: h.AppID})
		}
		switch order.GetOperation() {
		case "lock":
			current = v1pb.HostOperation_LOCK
			if err := ack(current); err != nil {
				return connected, err
			}
		case "update":
			c.install(order.GetTables(), version)
			if c.opts.OnUpdate != nil {
				c.opts.OnUpdate(ctx, c.Owns)
			}
			current = v1pb.HostOperation_UPDATE
			if err := ack(current); err != nil {
				return connected, err
			}
		case "unlock":
			if current != v1pb.HostOperation_UPDATE {
				continue // an unlock without its update: ignored, as daprd does
			}
			current = v1pb.HostOperation_UNLOCK
			c.open()
			if err := ack(current); err != nil {
				return connected, err
			}
		default:
			return connected, fmt.Errorf("placement sent an unknown operation %q", order.GetOperation())
		}
	}
}

// install replaces the tables and holds lookups until the round's unlock.
func (c *Client) install(in *v1pb.PlacementTables, version uint64) {
	tables := make(map[string]*hashing.Consistent, len(in.GetEntries()))
	hosts := make(map[string]int, len(in.GetEntries()))
	for actorType, t := range in.GetEntries() {
		loadMap := make(map[string]*hashing.Host, len(t.GetLoadMap()))
		for name, h := range t.GetLoadMap() {
			loadMap[name] = hashing.NewHost(h.GetName(), h.GetId(), 0, h.GetPort())
		}
		tables[actorType] = hashing.NewFromExisting(loadMap, in.GetReplicationFactor(), c.vnode)
		hosts[actorType] = len(loadMap)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tables, c.hosts, c.version = tables, hosts, version
	c.suspendLocked()
}

// suspend holds lookups until the next round's unlock.
func (c *Client) suspend() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.suspendLocked()
}

func (c *Client) suspendLocked() {
	if c.isReady {
		c.ready = make(chan struct{})
		c.isReady = false
	}
}

func (c *Client) open() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.isReady {
		close(c.ready)
		c.isReady = true
	}
}

// Owns reports whether the installed tables place the actor on this
// sidecar, without waiting for a round to end.
func (c *Client) Owns(actorType, actorID string) bool {
	c.mu.Lock()
	t := c.tables[actorType]
	c.mu.Unlock()
	if t == nil {
		return false
	}
	h, err := t.GetHost(actorID)
	return err == nil && h.Name == c.opts.Host.Name
}

// Lookup finds the sidecar that owns an actor. It waits while a round is in
// progress or before the first one, until ctx is done. An actor type no
// host has reported is an error wrapping ErrNoAddress.
func (c *Client) Lookup(ctx context.Context, actorType, actorID string) (Lookup, error) {
	for {
		c.mu.Lock()
		ready, ok := c.ready, c.isReady
		t := c.tables[actorType]
		c.mu.Unlock()
		if !ok {
			select {
			case <-ready:
				continue
			case <-ctx.Done():
				return Lookup{}, fmt.Errorf("waiting for the placement tables: %w", context.Cause(ctx))
			}
		}
		if t == nil {
			return Lookup{}, fmt.Errorf("%w: %s", ErrNoAddress, actorType)
		}
		h, err := t.GetHost(actorID)
		if err != nil {
			return Lookup{}, fmt.Errorf("%w: %s: %v", ErrNoAddress, actorType, err)
		}
		return Lookup{Address: h.Name, AppID: h.AppID, Local: h.Name == c.opts.Host.Name}, nil
	}
}

// Ready is closed once the tables of a completed round are in force (it is
// replaced during a later round: call it again to wait anew).
func (c *Client) Ready() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ready
}

// Connected reports whether a stream to placement is open and answered.
func (c *Client) Connected() bool { return c.connected.Load() }

// Hosts reports how many hosts the current tables hold per actor type.
func (c *Client) Hosts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.hosts))
	for k, v := range c.hosts {
		out[k] = v
	}
	return out
}
