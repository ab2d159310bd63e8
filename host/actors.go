package host

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/wapr-dev/wapr/host/internal/actors"
	"github.com/wapr-dev/wapr/host/internal/api"
	"github.com/wapr-dev/wapr/host/internal/placement"
	"github.com/wapr-dev/wapr/host/internal/scheduler"
)

// hostActors is the actor subsystem of a host: the runtime, its placement
// client and, when no placement address was given, the embedded placement
// server. All nil while actors are off.
type hostActors struct {
	// hosting: started with an actor state store, so hosting the app's
	// actors (else only calling actors hosted elsewhere).
	hosting bool
	runtime *actors.Runtime
	client  *placement.Client
	server  *placement.Server
	// sched is the scheduler client (nil: reminders are off), embedded
	// the scheduler server run in this process, if any.
	sched    *scheduler.Client
	embedded *embeddedScheduler
}

// embeddedScheduler is Dapr's scheduler server started in the background:
// sidecar start-up never waits for it (its etcd takes a second or more to
// elect itself); reminder calls wait until it serves.
type embeddedScheduler struct {
	cancel context.CancelFunc
	done   chan struct{}     // closed once the start is over
	srv    *scheduler.Server // set before done is closed, if it started
}

// startActors starts the actor runtime, once the app's port is open (app
// nil: no app), when actors can work: an actor state store is declared
// (daprd hosts no actor without one) or a placement address is given (an
// app may call actors hosted elsewhere). Only then is the app asked for its
// actor configuration, and, without an address, the embedded placement
// server started: a sidecar without actors pays nothing. Failures are
// logged and leave actors off, as daprd keeps serving the rest of its API.
//
// From then on a reload that adds or removes the actor state store starts
// or stops actors the same way (reloadActors); it holds reloadMu, so
// start-up and a reload never start them twice.
func (h *Host) startActors(ctx context.Context, app api.AppChannel) {
	h.reloadMu.Lock()
	defer h.reloadMu.Unlock()
	h.actorsArmed, h.actorsApp = true, app
	h.startActorsLocked(ctx, app)
}

// reloadActors applies a reload to actors, with reloadMu held, once the
// reloaded components are in force: an actor state store that appeared
// starts actors as at start-up (or restarts a runtime that only called
// actors elsewhere, now to host the app's); one that went away stops them
// as Shutdown does (leaving placement, then deactivating every actor),
// and, with a placement address, starts them again to call actors hosted
// elsewhere. Nothing happens before start-up has reached actors (it finds
// the store itself) or after Shutdown began.
func (h *Host) reloadActors() {
	if !h.actorsArmed || h.stopCtx.Err() != nil {
		return
	}
	h.mu.Lock()
	on, hosting := h.actors.runtime != nil, h.actors.hosting
	h.mu.Unlock()
	want := h.api.HasActorStore()
	if on && hosting == want || !on && !want {
		return
	}
	if on {
		h.log.Info("actors stop: the actor state store changed", "actorStateStore", want)
		h.api.SetActors(nil)
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		for _, err := range h.stopActors(ctx) {
			h.log.Warn("stopping actors for a reload", "error", err)
		}
		cancel()
	}
	h.startActorsLocked(h.stopCtx, h.actorsApp)
}

// startActorsLocked is startActors with reloadMu held.
func (h *Host) startActorsLocked(ctx context.Context, app api.AppChannel) {
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
	sched, schedAddrs, embedded := h.newSchedulerClient(rt, cfg.Entities)
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
	h.actors = hostActors{hosting: hosting, runtime: rt, client: client, server: server, sched: sched}
	if embedded {
		h.actors.embedded = h.startEmbeddedScheduler(sched)
	} else if sched != nil {
		sched.Start(schedAddrs)
	}
	h.mu.Unlock()
	h.api.SetActors(rt)
	h.serveRemoteReminders(rt)
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
	h.serveRemoteReminders(nil)
	var errs []error
	if a.sched != nil {
		// No more triggers: the scheduler sends them to other sidecars.
		if err := a.sched.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
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
	if e := a.embedded; e != nil {
		e.cancel()
		select {
		case <-e.done:
			if e.srv != nil {
				if err := e.srv.Close(ctx); err != nil {
					errs = append(errs, err)
				}
			}
		case <-ctx.Done():
			errs = append(errs, ctx.Err())
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

// newSchedulerClient returns the scheduler client for the actor runtime rt,
// its trigger handler rt.CallReminder, and the scheduler addresses to
// start it on; embedded true: Dapr's scheduler is to run in this process
// (no scheduler address and no placement address: the single-node
// default). A nil client: reminders are off (an external placement and no
// scheduler, as daprd without one).
func (h *Host) newSchedulerClient(rt *actors.Runtime, entities []string) (c *scheduler.Client, addrs []string, embedded bool) {
	addrs = splitAddresses(h.opts.SchedulerHostAddress)
	embedded = len(addrs) == 0 && h.opts.PlacementHostAddress == ""
	switch {
	case len(addrs) == 0 && !embedded:
		h.log.Info("actor reminders are off: an external placement is given and no --scheduler-host-address")
		return nil, nil, false
	case embedded && len(entities) == 0:
		return nil, nil, false // no reminder to keep: the app hosts no actor
	}
	ns := h.opts.Namespace
	if ns == "" {
		ns = "default" // as daprd without NAMESPACE
	}
	c = scheduler.NewClient(scheduler.ClientOptions{
		AppID: h.opts.AppID, Namespace: ns, ActorTypes: entities,
		OnTrigger: rt.CallReminder, Logger: h.log,
	})
	rt.SetReminders(c)
	return c, addrs, embedded
}

// startEmbeddedScheduler runs Dapr's scheduler server on loopback in the
// background, its data in the scheduler data folder, and connects c to it
// once it serves; if it cannot start, reminder calls fail with the cause.
func (h *Host) startEmbeddedScheduler(c *scheduler.Client) *embeddedScheduler {
	ctx, cancel := context.WithCancel(context.Background())
	e := &embeddedScheduler{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(e.done)
		dir, err := SchedulerDataDir(h.opts.SchedulerDataDir, h.opts.AppID)
		if err == nil {
			e.srv, err = scheduler.StartServer(ctx, scheduler.ServerOptions{Host: "127.0.0.1", DataDir: dir})
		}
		if err != nil {
			if ctx.Err() == nil {
				h.log.Error("actor reminders are off: the embedded scheduler did not start", "dataDir", dir, "error", err)
			}
			c.Fail(err)
			return
		}
		h.log.Info("embedded scheduler started", "address", e.srv.Addr(), "dataDir", dir)
		c.Start([]string{e.srv.Addr()})
	}()
	return e
}

// SchedulerDataDir resolves Options.SchedulerDataDir: dir when given, else
// the app's folder under the user data folder, wapr/scheduler/<app id>
// ($XDG_DATA_HOME or ~/.local/share on Linux and BSDs, ~/Library/Application
// Support on macOS, %LocalAppData% on Windows). One folder per app id, so
// that the sidecars of different apps on one machine each run their own;
// two sidecars of one app need --scheduler-data-dir or a shared external
// scheduler, since one scheduler at a time holds a folder (the second
// finds it locked and runs without reminders).
func SchedulerDataDir(dir, appID string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	base, err := userDataDir()
	if err != nil {
		return "", fmt.Errorf("no user data folder for the embedded scheduler (give --scheduler-data-dir): %w", err)
	}
	name := url.PathEscape(appID)
	if name == "" || name == "." || name == ".." {
		name = "_" + name
	}
	return filepath.Join(base, "wapr", "scheduler", name), nil
}

func userDataDir() (string, error) {
	switch runtime.GOOS {
	case "windows":
		if d := os.Getenv("LocalAppData"); d != "" {
			return d, nil
		}
		return "", errors.New("%LocalAppData% is not set")
	case "darwin", "ios":
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		return filepath.Join(home, "Library", "Application Support"), nil
	}
	if d := os.Getenv("XDG_DATA_HOME"); filepath.IsAbs(d) {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".local", "share"), nil
}
