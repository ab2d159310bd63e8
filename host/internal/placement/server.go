// Package placement connects wapr to Dapr's actor placement service: Client
// speaks the placement protocol (dapr.proto.placement.v1, the
// ReportDaprStatus stream) as daprd 1.18 does, and Server runs Dapr's own
// placement server (github.com/dapr/dapr/pkg/placement, hashicorp/raft with a
// single peer) in this process, on loopback, for a host given no external
// placement address. wapr never decides actor placement itself: the tables
// come from Dapr's server, the lookups use Dapr's consistent hashing
// (pkg/placement/hashing), so wapr and daprd sidecars on one placement agree
// on where every actor lives.
//
// This package and host/internal/actors are the only ones in the host that
// import Dapr's non-generated packages.
package placement

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/dapr/dapr/pkg/healthz"
	"github.com/dapr/dapr/pkg/modes"
	daprplacement "github.com/dapr/dapr/pkg/placement"
	"github.com/dapr/dapr/pkg/placement/peers"
	"github.com/dapr/dapr/pkg/security"

	"github.com/wapr-dev/wapr/host/internal/daprlog"
)

// Server is Dapr's placement server running in this process: one raft peer,
// no mTLS (it listens on loopback only), tables kept in memory as Dapr's
// placement keeps them (its raft store is in memory; hosts report again
// after a restart).
type Server struct {
	addr   string
	cancel context.CancelFunc
	done   chan error
}

// StartServer runs a placement server listening on host (a loopback address
// such as "127.0.0.1") at a free port, and returns once it leads its raft
// group and accepts connections, or with an error. Close stops it.
func StartServer(ctx context.Context, host string) (*Server, error) {
	daprlog.Quiet()
	var lastErr error
	// Dapr's server listens by itself, at a port it is given: a free port
	// found here may be taken by someone else before it listens, so a
	// failed start is tried again on another.
	for range 5 {
		s, err := startServer(ctx, host)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func startServer(ctx context.Context, host string) (*Server, error) {
	port, err := freePort(host)
	if err != nil {
		return nil, err
	}
	raftPort, err := freePort(host)
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	hz := healthz.New()
	sec, err := security.New(runCtx, security.Options{
		ControlPlaneTrustDomain: "localhost",
		ControlPlaneNamespace:   "default",
		AppID:                   "dapr-placement",
		MTLSEnabled:             false,
		Mode:                    modes.StandaloneMode,
		Healthz:                 hz,
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("placement security: %w", err)
	}
	s := &Server{addr: net.JoinHostPort(host, strconv.Itoa(port)), cancel: cancel, done: make(chan error, 2)}
	go func() { s.done <- sec.Run(runCtx) }()
	handler, err := sec.Handler(runCtx)
	if err != nil {
		cancel()
		return nil, err
	}
	p, err := daprplacement.New(daprplacement.Options{
		NodeID:            "wapr-placement",
		Port:              port,
		ListenAddress:     host,
		Security:          handler,
		Healthz:           hz,
		KeepAliveTime:     2 * time.Second,
		KeepAliveTimeout:  3 * time.Second,
		ReplicationFactor: 100, // daprd's default
		Peers:             []peers.PeerInfo{{ID: "wapr-placement", Address: net.JoinHostPort(host, strconv.Itoa(raftPort))}},
		// Dapr's defaults (cmd/placement/options).
		DisseminateTimeout:        8 * time.Second,
		DisseminateCoalesceWindow: 0,
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("placement server: %w", err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- p.Run(runCtx) }()
	// Ready once it leads and accepts: its table query answers only then.
	deadline := time.Now().Add(10 * time.Second)
	for {
		qctx, qcancel := context.WithTimeout(runCtx, 200*time.Millisecond)
		_, qerr := p.StatePlacementTables(qctx)
		qcancel()
		if qerr == nil && dialable(s.addr) {
			break
		}
		select {
		case err := <-runErr:
			cancel()
			if err == nil {
				err = errors.New("stopped")
			}
			return nil, fmt.Errorf("placement server: %w", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			return nil, errors.New("placement server: not leading after 10s")
		}
	}
	go func() { s.done <- <-runErr }()
	return s, nil
}

// Addr is where the server listens, "host:port".
func (s *Server) Addr() string { return s.addr }

// Close stops the server and waits for it, at most until ctx is done.
// Close twice is safe.
func (s *Server) Close(ctx context.Context) error {
	s.cancel()
	for range 2 {
		select {
		case <-s.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.done <- nil // a second Close returns at once
	s.done <- nil
	return nil
}

func freePort(host string) (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func dialable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
