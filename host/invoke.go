package host

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/wapr-dev/wapr/host/component/nameresolution"
	"github.com/wapr-dev/wapr/host/internal/api"
	"github.com/wapr-dev/wapr/host/internal/httpapi"
	"github.com/wapr-dev/wapr/host/internal/internalsgrpc"
	"github.com/wapr-dev/wapr/host/internal/resources"
	"github.com/wapr-dev/wapr/host/internal/sidecarwire"
)

// Modes, as daprd's --mode names them; the mode picks the default name
// resolver.
const (
	ModeStandalone = "standalone"
	ModeKubernetes = "kubernetes"
)

// Sidecar wires, the protocols of the sidecar-to-sidecar channel
// (Options.SidecarWire).
const (
	SidecarWireMux  = "mux"  // calls framed by hand, multiplexed over one TCP connection (default)
	SidecarWireHTTP = "http" // HTTP/1.1 over pooled keep-alive connections
	SidecarWireGRPC = "grpc" // gRPC unary calls over HTTP/2
	// SidecarWireDapr calls other sidecars with daprd's own protocol,
	// dapr.proto.internals.v1 over gRPC, and serves both it and mux, as the
	// default does; for measurement and tests (the default already calls
	// daprd sidecars that way).
	SidecarWireDapr = "dapr"
)

// sidecarServer is the called end of the sidecar-to-sidecar channel.
type sidecarServer interface {
	Serve(ln net.Listener) error
	Shutdown(ctx context.Context) error
}

// sidecarClient is the calling end of the sidecar-to-sidecar channel.
type sidecarClient interface {
	api.SidecarChannel
	Close()
}

// defaultResolver is the name resolver of a mode whose Configuration names
// none, as in Dapr.
func defaultResolver(mode string) string {
	if mode == ModeKubernetes {
		return "kubernetes"
	}
	return "mdns"
}

// startInvocation opens the sidecar-to-sidecar channel and starts name
// resolution, so that this sidecar's app can call others and be called.
// A resolver the Configuration names that cannot start fails Start; the
// mode's default failing only disables calls to other apps, with a warning.
func (h *Host) startInvocation(ctx context.Context, cfg resources.Configuration) error {
	ln := h.opts.InternalListener
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", h.opts.InternalAddress)
		if err != nil {
			return fmt.Errorf("listening for other sidecars: %w", err)
		}
	}
	h.internalLn = ln
	// Both ends of the channel speak Options.SidecarWire.
	switch h.opts.SidecarWire {
	case SidecarWireGRPC:
		h.internal = sidecarwire.NewGRPCServer(h.api, h.opts.MaxRequestBodySize, h.log)
		h.sidecars = sidecarwire.NewGRPCClient()
	case SidecarWireMux, SidecarWireDapr:
		// One port for both: wapr sidecars call it on the mux wire, daprd
		// sidecars with gRPC (dapr.proto.internals.v1); the server tells them
		// apart by a connection's first byte. The mux client turns to the
		// internals client for a peer that answers in HTTP/2 (a daprd).
		ms := sidecarwire.NewMuxServer(h.api, h.opts.MaxRequestBodySize, h.log)
		h.daprInternals = internalsgrpc.NewServer(h.api, h.opts.MaxRequestBodySize, h.log)
		ms.ServeHTTP2(h.daprInternals)
		h.internal = ms
		if h.opts.SidecarWire == SidecarWireDapr {
			h.sidecars = internalsgrpc.NewClient()
		} else {
			h.sidecars = sidecarwire.NewMuxClientWith(internalsgrpc.NewClient(), h.log)
		}
	default:
		h.internal = httpapi.New(httpapi.Options{
			API:                h.api,
			MaxRequestBodySize: h.opts.MaxRequestBodySize,
			Sidecar:            true,
			Logger:             h.log,
		})
		h.sidecars = httpapi.NewSidecarClient()
	}
	h.internalErr = make(chan error, 1)
	go func() { h.internalErr <- h.internal.Serve(ln) }()
	inv := &api.Invocation{Sidecars: h.sidecars, Namespace: h.opts.Namespace}

	name, explicit := cfg.NameResolution.Component, true
	if name == "" {
		name, explicit = defaultResolver(h.opts.Mode), false
	}
	h.report.NameResolution = name
	h.report.InternalAddress = ln.Addr().String()
	fail := func(err error) error {
		err = fmt.Errorf("name resolution %q: %w", name, err)
		if explicit {
			return err
		}
		h.log.Warn("calls to other apps are off", "error", err)
		h.report.Problems = append(h.report.Problems, err.Error())
		h.api.SetInvocation(inv)
		return nil
	}
	newResolver, ok := h.opts.Registry.resolves[name]
	if !ok {
		return fail(errors.New("no such name resolver in this build"))
	}
	r := newResolver()
	port := ln.Addr().(*net.TCPAddr).Port
	md := nameresolution.Metadata{
		Instance: nameresolution.Instance{
			AppID: h.opts.AppID, Namespace: h.opts.Namespace,
			Address: h.opts.HostAddress, InternalPort: port,
		},
		Configuration: cfg.NameResolution.Configuration,
	}
	initCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := r.Init(initCtx, md); err != nil {
		closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r.Close(closeCtx)
		return fail(err)
	}
	h.resolver = r
	inv.Resolver = r
	h.api.SetInvocation(inv)
	h.log.Info("service invocation ready", "nameResolution", name, "sidecarAddress", net.JoinHostPort(h.opts.HostAddress, strconv.Itoa(port)))
	return nil
}

// stopInvocation stops announcing this sidecar first, so callers turn to
// other instances, then drains the sidecar channel.
func (h *Host) stopInvocation(ctx context.Context) []error {
	var errs []error
	if h.resolver != nil {
		if err := h.resolver.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("closing name resolution: %w", err))
		}
	}
	if h.internal != nil {
		errs = append(errs, stopServer(ctx, "the sidecar channel", h.internal, h.internalLn, h.internalErr)...)
	}
	if h.sidecars != nil {
		h.sidecars.Close()
	}
	return errs
}

// hostAddress is the IP other sidecars reach this one at: DAPR_HOST_IP when
// set (as daprd), else the first IPv4 address of an interface that is up
// and not loopback, else 127.0.0.1.
func hostAddress() string {
	if ip := os.Getenv("DAPR_HOST_IP"); ip != "" {
		return ip
	}
	ifaces, err := net.Interfaces()
	if err == nil {
		for _, ifc := range ifaces {
			if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
				continue
			}
			addrs, _ := ifc.Addrs()
			for _, a := range addrs {
				if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
					return n.IP.String()
				}
			}
		}
	}
	return "127.0.0.1"
}
