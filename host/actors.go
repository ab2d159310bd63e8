package host

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/wapr-dev/wapr/host/internal/actors"
	"github.com/wapr-dev/wapr/host/internal/api"
	"github.com/wapr-dev/wapr/host/internal/placement"
)

// hostActors is the actor subsystem of a host: the runtime, its placement
// client and, when no placement address was given, the embedded placement
// server. All nil while actors are off.
type hostActors struct {
	runtime *actors.Runtime
	client  *placement.Client
	server  *placement.Server
}

// startActors starts the actor runtime, once the app's port is open (app
// nil: no app), when actors can work: an actor state store is declared
// (daprd hosts no actor without one) or a placement address is given (an
// app may call actors hosted elsewhere). Only then is the app asked for its
// actor configuration, and, without an address, the embedded placement
// server started: a sidecar without actors pays nothing. Failures are
// logged and leave actors off, as daprd keeps serving the rest of its API.
func (h *Host) startActors(ctx context.Context, app api.AppChannel) {
	hosting := h.api.HasActorStore()
	if !hosting && h.opts.PlacementHostAddress == "" {
		return
	}
	cfg, err := actors.ParseConfig(nil)
	if h.opts.AppProtocol == "grpc" || !hosting {
		// Actors of gRPC apps are not served yet (docs/building-blocks/actors.md);
		// without an actor state store hosting is suspended, as in daprd.
		app = nil
	}
	if app != nil {
		callCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		cfg, err = actors.FetchConfig(callCtx, app)
		cancel()
		if err != nil {
			h.log.Warn("actors are off: the app's actor configuration could not be read", "error", err)
			return
		}
	}
	if h.internalLn == nil || h.sidecars == nil {
		return
	}
	addrs := splitAddresses(h.opts.PlacementHostAddress)
	var server *placement.Server
	if len(addrs) == 0 {
		srv, err := placement.StartServer(ctx, "127.0.0.1")
		if err != nil {
			h.log.Error("actors are off: the embedded placement server did not start", "error", err)
			return
		}
		server = srv
		addrs = []string{srv.Addr()}
		h.log.Info("embedded placement server started", "address", srv.Addr())
	}
	rt := actors.New(actors.Options{
		AppID: h.opts.AppID, App: app, Sidecars: h.sidecars, Config: cfg, Logger: h.log,
	})
	tcp := h.internalLn.Addr().(*net.TCPAddr)
	ip := h.opts.HostAddress
	if !tcp.IP.IsUnspecified() {
		ip = tcp.IP.String() // bound to one address: other sidecars reach it there
	}
	client := placement.NewClient(placement.ClientOptions{
		Addresses: addrs,
		Host: placement.Host{
			Name: net.JoinHostPort(ip, strconv.Itoa(tcp.Port)), Port: int64(tcp.Port),
			AppID: h.opts.AppID, Namespace: h.opts.Namespace, Entities: cfg.Entities,
		},
		OnUpdate:     rt.Rebalance,
		OnDisconnect: rt.Halt,
		Logger:       h.log,
	})
	rt.SetLocator(client)
	h.mu.Lock()
	if h.stopCtx.Err() != nil { // Shutdown began meanwhile
		h.mu.Unlock()
		if server != nil {
			server.Close(context.Background())
		}
		return
	}
	client.Start(ctx)
	rt.Start()
	h.actors = hostActors{runtime: rt, client: client, server: server}
	h.mu.Unlock()
	h.api.SetActors(rt)
	h.log.Info("actors on", "placement", strings.Join(addrs, ","), "entities", strings.Join(cfg.Entities, ","))
}

// stopActors leaves placement first, so that other sidecars stop routing
// calls here, then deactivates this host's actors and stops the embedded
// placement server.
func (h *Host) stopActors(ctx context.Context) []error {
	h.mu.Lock()
	a := h.actors
	h.actors = hostActors{}
	h.mu.Unlock()
	var errs []error
	if a.client != nil {
		if err := a.client.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if a.runtime != nil {
		if err := a.runtime.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if a.server != nil {
		if err := a.server.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	for i, err := range errs {
		errs[i] = errors.Join(errors.New("stopping actors"), err)
	}
	return errs
}

// splitAddresses reads daprd's --placement-host-address: a comma-separated
// list of host:port.
func splitAddresses(s string) []string {
	var out []string
	for a := range strings.SplitSeq(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}
