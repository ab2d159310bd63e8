// Package mdns is the self-hosted default name resolver: sidecars on one
// network find each other with multicast DNS (RFC 6762) and DNS service
// discovery (RFC 6763), with no server to run.
//
// # Announcing
//
// Init announces this sidecar, with github.com/hashicorp/mdns as the
// responder, as an instance of the service "<app id>._wapr._tcp" in the
// domain "local.": an SRV record with Instance.InternalPort, an A (or AAAA)
// record with Instance.Address, which is required, and the TXT record
// "wapr=1". The instance name, "<hostname>-<pid>-<port>", is unique per
// sidecar and also serves as its host name, so several sidecars on one
// machine never mix their records. With an empty Instance.AppID Init
// announces nothing; resolving works all the same.
//
// daprd announces its app id itself as the service name. wapr deliberately
// does not: the port it announces speaks daprd's protocol only beside wapr's
// own mux wire (not with --sidecar-wire http or grpc), and a daprd found over
// mDNS would be called on a wire chosen for wapr peers. The two never resolve
// each other; docs/building-blocks/invoke.md says which resolvers let them.
//
// # Resolving
//
// Resolve answers from a cache while it holds an address announced within the
// last 60 s. Otherwise it asks the network and returns as soon as the first
// address arrives; the query keeps listening for the rest of its timeout and
// adds later answers to the cache. Concurrent Resolves of one app id share
// one query. Every 30 s the ids resolved within the last 60 s that have
// addresses are asked about again in the background, so an instance that
// stops answering drops out of the answers about a minute later and a busy
// id rarely waits for the network. When no sidecar answers within the
// timeout, or before ctx is done, Resolve returns an error wrapping
// nameresolution.ErrNotFound that names the id. Request.Namespace is
// ignored: self-hosted sidecars have no namespaces.
//
// The queries are wapr's own, a few lines on github.com/miekg/dns (the DNS
// library hashicorp/mdns is built on), rather than hashicorp/mdns's Query,
// which in v1.0.7 keeps listening for its whole timeout after its context is
// cancelled (so Close would wait for it), drops an answer when the reader is
// not receiving at that instant, goes on writing to a *ServiceEntry it has
// handed over (a data race when an instance answers twice), and always joins
// the multicast group on the default interface, failing on a host with no
// route for 224.0.0.251 even when an interface is given.
//
// # Configuration
//
// spec.nameResolution.configuration (key names are matched
// case-insensitively):
//
//	interface  the network interface to announce and ask on, by name
//	           (e.g. "eth0", or "lo" to stay on this machine). Default: the
//	           responder listens where the system routes 224.0.0.251 (its
//	           default multicast interface, as hashicorp/mdns does) and
//	           questions go out on every interface that is up and
//	           multicast-capable
//	timeout    how long one query listens for answers, a Go duration
//	           (0 < timeout <= 1m); default 1s
//	ipv6       also ask over IPv6 (ff02::fb); default false. Addresses are
//	           announced as Instance.Address is, A or AAAA either way
//
// # Concurrency and lifecycle
//
// A Resolver is safe for concurrent use after Init. Resolve returns a fresh
// slice the caller owns. Close stops announcing, cancels queries and the
// refresher and returns once its goroutines have ended (hashicorp/mdns's
// listener goroutines end on their own as their sockets close); a second
// Close does nothing.
package mdns

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	hmdns "github.com/hashicorp/mdns"

	"github.com/wapr-dev/wapr/builtin/internal/nrconfig"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/nameresolution"
)

const (
	// serviceSuffix follows the app id in the service name; see the package
	// comment for why it is not daprd's.
	serviceSuffix = "._wapr._tcp"
	domain        = "local."
	txtRecord     = "wapr=1"

	defaultCacheTTL        = 60 * time.Second
	defaultRefreshInterval = 30 * time.Second
)

const errPrefix = "nameresolution.mdns: "

var errClosed = fmt.Errorf(errPrefix+"%w", component.ErrClosed)

var _ nameresolution.Resolver = (*resolver)(nil)

type resolver struct {
	// cacheTTL is how long an announced address is used without being seen
	// again, and how long after its last Resolve an id is refreshed.
	// refreshInterval is the refresher's period. Tests shorten both before
	// Init.
	cacheTTL        time.Duration
	refreshInterval time.Duration

	cfg    config        // set by Init
	server *hmdns.Server // nil when announcing nothing
	stop   chan struct{} // closed by Close: ends queries and the refresher
	wg     sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	entries map[string]*entry // by app id
	browses int               // queries started, for tests
}

// entry is what the resolver knows about one app id. Its fields are guarded
// by resolver.mu.
type entry struct {
	seen     map[string]time.Time // address -> when last announced
	lastUsed time.Time            // last Resolve
	browse   *browse              // the query in flight, or nil
}

// browse is one query for an app id.
type browse struct {
	found    chan struct{} // closed at the first address or at the end
	signaled bool          // found is closed
	err      error         // why no question could be sent
}

// New returns a resolver with the default configuration. It has no side
// effects; Init starts announcing.
func New() nameresolution.Resolver { return newResolver() }

func newResolver() *resolver {
	return &resolver{
		cacheTTL:        defaultCacheTTL,
		refreshInterval: defaultRefreshInterval,
		cfg:             defaultConfig(),
		stop:            make(chan struct{}),
		entries:         map[string]*entry{},
	}
}

func (r *resolver) Init(_ context.Context, md nameresolution.Metadata) error {
	cfg, err := parseConfig(md.Configuration)
	if err != nil {
		return fmt.Errorf(errPrefix+"%w", err)
	}
	r.cfg = cfg
	if md.Instance.AppID != "" {
		if err := r.announce(md.Instance); err != nil {
			return err
		}
	}
	r.wg.Add(1)
	go r.refresh()
	return nil
}

// announce starts the responder for inst.
func (r *resolver) announce(inst nameresolution.Instance) error {
	if problem := nrconfig.LabelProblem(inst.AppID); problem != "" {
		return fmt.Errorf(errPrefix+"cannot announce app id %q: it %s: %w", inst.AppID, problem, component.ErrInvalidArgument)
	}
	ip := net.ParseIP(inst.Address)
	if ip == nil || ip.IsUnspecified() {
		return fmt.Errorf(errPrefix+"cannot announce app id %q: the instance address %q is not an IP other sidecars can reach: %w", inst.AppID, inst.Address, component.ErrInvalidArgument)
	}
	if inst.InternalPort <= 0 || inst.InternalPort > 65535 {
		return fmt.Errorf(errPrefix+"cannot announce app id %q: the internal port %d is not in 1..65535: %w", inst.AppID, inst.InternalPort, component.ErrInvalidArgument)
	}
	name := instanceName(inst.InternalPort)
	svc, err := hmdns.NewMDNSService(name, inst.AppID+serviceSuffix, domain, name+"."+domain, inst.InternalPort, []net.IP{ip}, []string{txtRecord})
	if err != nil {
		return fmt.Errorf(errPrefix+"cannot announce app id %q: %w", inst.AppID, err)
	}
	server, err := hmdns.NewServer(&hmdns.Config{
		Zone:  svc,
		Iface: r.cfg.iface,
		// Its messages (mostly packets it cannot use) are not the user's
		// concern.
		Logger: slog.NewLogLogger(slog.Default().Handler(), slog.LevelDebug),
	})
	if err != nil {
		where := "the default multicast interface"
		if r.cfg.iface != nil {
			where = "interface " + strconv.Quote(r.cfg.iface.Name)
		}
		return fmt.Errorf(errPrefix+"cannot announce app id %q on %s (set the %q configuration key to choose one): %w", inst.AppID, where, keyInterface, err)
	}
	r.server = server
	return nil
}

// instanceName is "<hostname>-<pid>-<port>" made into one DNS label.
func instanceName(port int) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "wapr"
	}
	host, _, _ = strings.Cut(host, ".")
	suffix := "-" + strconv.Itoa(os.Getpid()) + "-" + strconv.Itoa(port)
	host = strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' {
			return c
		}
		return '-'
	}, host)
	if max := 63 - len(suffix); len(host) > max {
		host = host[:max]
	}
	return host + suffix
}

func (r *resolver) Resolve(ctx context.Context, req nameresolution.Request) ([]string, error) {
	id := req.ID
	if problem := nrconfig.LabelProblem(id); problem != "" {
		return nil, fmt.Errorf(errPrefix+"app id %q %s: %w", id, problem, component.ErrInvalidArgument)
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, errClosed
	}
	now := time.Now()
	e := r.entries[id]
	if e == nil {
		e = &entry{seen: map[string]time.Time{}}
		r.entries[id] = e
	}
	e.lastUsed = now
	if addrs := r.fresh(e, now); len(addrs) > 0 {
		r.mu.Unlock()
		return addrs, nil
	}
	b := e.browse
	if b == nil {
		b = r.startBrowse(id, e)
	}
	r.mu.Unlock()

	select {
	case <-b.found:
	case <-ctx.Done():
		return nil, fmt.Errorf(errPrefix+"%w %q: %w", nameresolution.ErrNotFound, id, ctx.Err())
	case <-r.stop:
		return nil, errClosed
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if addrs := r.fresh(e, time.Now()); len(addrs) > 0 {
		return addrs, nil
	}
	if b.err != nil {
		return nil, fmt.Errorf(errPrefix+"%w %q: the mDNS query failed: %w", nameresolution.ErrNotFound, id, b.err)
	}
	return nil, fmt.Errorf(errPrefix+"%w %q: no answer within %s", nameresolution.ErrNotFound, id, r.cfg.timeout)
}

// fresh returns e's addresses seen within the cache TTL, sorted. r.mu is held.
func (r *resolver) fresh(e *entry, now time.Time) []string {
	var out []string
	for addr, seen := range e.seen {
		if now.Sub(seen) < r.cacheTTL {
			out = append(out, addr)
		}
	}
	slices.Sort(out)
	return out
}

// startBrowse starts a query for id. r.mu is held and r is not closed.
func (r *resolver) startBrowse(id string, e *entry) *browse {
	b := &browse{found: make(chan struct{})}
	e.browse = b
	r.browses++
	r.wg.Add(1)
	go r.runBrowse(id, e, b)
	return b
}

// runBrowse runs one query for id until the timeout or Close.
func (r *resolver) runBrowse(id string, e *entry, b *browse) {
	defer r.wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.timeout)
	var watch sync.WaitGroup
	watch.Go(func() {
		select {
		case <-r.stop:
			cancel()
		case <-ctx.Done():
		}
	})
	defer watch.Wait()
	defer cancel()

	err := query(ctx, r.cfg, id+serviceSuffix+"."+domain, func(addr string) {
		r.mu.Lock()
		defer r.mu.Unlock()
		e.seen[addr] = time.Now()
		if !b.signaled {
			b.signaled = true
			close(b.found)
		}
	})

	r.mu.Lock()
	defer r.mu.Unlock()
	e.browse = nil
	b.err = err
	if !b.signaled {
		b.signaled = true
		close(b.found)
	}
}

// refresh asks again, every refreshInterval, about the ids resolved within
// the cache TTL that have addresses (an id no one serves is asked about only
// when resolved), forgets addresses not seen within the TTL and then ids no
// longer used.
func (r *resolver) refresh() {
	defer r.wg.Done()
	tick := time.NewTicker(r.refreshInterval)
	defer tick.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-tick.C:
		}
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return
		}
		now := time.Now()
		for id, e := range r.entries {
			for addr, seen := range e.seen {
				if now.Sub(seen) >= r.cacheTTL {
					delete(e.seen, addr)
				}
			}
			recent := now.Sub(e.lastUsed) < r.cacheTTL
			switch {
			case e.browse != nil:
			case recent && len(e.seen) > 0:
				r.startBrowse(id, e)
			case !recent && len(e.seen) == 0:
				delete(r.entries, id)
			}
		}
		r.mu.Unlock()
	}
}

// Close stops announcing and every goroutine of r, waiting for them until
// ctx is done.
func (r *resolver) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	close(r.stop)
	server := r.server
	r.mu.Unlock()

	if server != nil {
		_ = server.Shutdown() // always nil
	}
	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf(errPrefix+"close: %w", ctx.Err())
	}
}
