package wasmcomp

import (
	"context"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// allowList is where a component's sockets and HTTP requests may go: the
// endpoints named by the metadata keys its descriptor lists, plus the
// wapr.dev/allow-hosts annotation. Entries are host:port; a name is
// resolved when checked, and a destination is allowed when one of its
// resolved addresses equals one of an entry's (so DNS tricks cannot steer a
// guest elsewhere: the host dials the address it checked).
type allowList struct {
	entries []hostPort
}

type hostPort struct{ host, port string }

// newAllowList builds the list from endpoint metadata values (host:port,
// comma-separated lists, or URLs) and explicit entries.
func newAllowList(endpointValues, extra []string) allowList {
	var a allowList
	for _, v := range append(endpointValues, extra...) {
		for _, item := range strings.Split(v, ",") {
			if hp, ok := parseEndpoint(strings.TrimSpace(item)); ok {
				a.entries = append(a.entries, hp)
			}
		}
	}
	return a
}

func (a allowList) empty() bool { return len(a.entries) == 0 }

// parseEndpoint reads "host:port" or a URL with a scheme (default ports:
// http 80, https 443, redis and rediss 6379). A bare host without a port
// grants nothing.
func parseEndpoint(v string) (hostPort, bool) {
	if v == "" {
		return hostPort{}, false
	}
	if strings.Contains(v, "://") {
		u, err := url.Parse(v)
		if err != nil || u.Hostname() == "" {
			return hostPort{}, false
		}
		port := u.Port()
		if port == "" {
			switch u.Scheme {
			case "https", "wss":
				port = "443"
			case "redis", "rediss":
				port = "6379"
			default:
				port = "80"
			}
		}
		return hostPort{strings.ToLower(u.Hostname()), canonicalPort(port)}, true
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return hostPort{}, false
	}
	return hostPort{strings.ToLower(host), canonicalPort(port)}, true
}

// resolve returns the addresses of host (itself when it is an IP).
func resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip.Unmap()}, nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	for i := range ips {
		ips[i] = ips[i].Unmap()
	}
	return ips, nil
}

// check resolves host and returns its addresses that the list allows on
// port. An empty result means the destination is denied.
func (a allowList) check(ctx context.Context, host, port string) ([]netip.AddrPort, error) {
	ips, err := resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	var out []netip.AddrPort
	port = canonicalPort(port)
	for _, e := range a.entries {
		if e.port != port {
			continue
		}
		allowed, err := resolve(ctx, e.host)
		if err != nil {
			continue
		}
		for _, ip := range ips {
			for _, ok := range allowed {
				if ip == ok {
					p, _ := netip.ParseAddrPort(net.JoinHostPort(ip.String(), port))
					out = append(out, p)
				}
			}
		}
	}
	return out, nil
}

// canonicalPort writes a numeric port without leading zeros, so "06379"
// and "6379" compare equal; anything else is kept as written.
func canonicalPort(p string) string {
	if n, err := strconv.ParseUint(p, 10, 16); err == nil {
		return strconv.FormatUint(n, 10)
	}
	return p
}
