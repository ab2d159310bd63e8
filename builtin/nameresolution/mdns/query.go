package mdns

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

var (
	groupIPv4 = &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251), Port: 5353}
	groupIPv6 = &net.UDPAddr{IP: net.ParseIP("ff02::fb"), Port: 5353}
)

// query asks the mDNS group who serves service (a fully qualified name such
// as "orders._wapr._tcp.local.") and calls found once with each address
// ("ip:port") an instance answers with, until ctx is done. found is called
// from several goroutines, one at a time. query returns once ctx is done and
// its goroutines have ended; its error says that no question could be sent.
//
// It asks from an ephemeral port, which makes it a "legacy unicast" querier
// (RFC 6762, section 6.7): responders, hashicorp/mdns's among them, answer
// to that port directly, so query need not join the multicast group.
func query(ctx context.Context, cfg config, service string, found func(addr string)) error {
	conns, err := openConns(cfg.ipv6)
	if err != nil {
		return err
	}
	closeAll := func() {
		for _, c := range conns {
			c.Close() // ends the readers; closing twice is harmless
		}
	}
	defer closeAll()

	q := newQuerier(conns, queryInterfaces(cfg.iface), service, found)
	if err := q.ask(service, dns.TypePTR); err != nil {
		return err
	}
	var readers sync.WaitGroup
	for _, c := range conns {
		readers.Go(func() { q.read(c) })
	}

	// Ask once more a little later if no one has answered: a lost packet
	// should not cost a whole timeout.
	if deadline, ok := ctx.Deadline(); ok {
		retry := time.NewTimer(time.Until(deadline) / 3)
		select {
		case <-retry.C:
			if !q.answered() {
				_ = q.ask(service, dns.TypePTR)
			}
		case <-ctx.Done():
			retry.Stop()
		}
	}
	<-ctx.Done()
	closeAll()
	readers.Wait()
	return nil
}

// openConns opens the sockets to ask from: UDP on an ephemeral port, IPv4
// and, when wanted, IPv6.
func openConns(withIPv6 bool) ([]*net.UDPConn, error) {
	c4, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero})
	if err != nil {
		return nil, err
	}
	p := ipv4.NewPacketConn(c4)
	_ = p.SetMulticastTTL(255) // RFC 6762, section 11
	_ = p.SetMulticastLoopback(true)
	conns := []*net.UDPConn{c4}
	if withIPv6 {
		c6, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6unspecified})
		if err != nil {
			c4.Close()
			return nil, err
		}
		p := ipv6.NewPacketConn(c6)
		_ = p.SetMulticastHopLimit(255)
		_ = p.SetMulticastLoopback(true)
		conns = append(conns, c6)
	}
	return conns, nil
}

// queryInterfaces returns the interfaces to ask on: the configured one, else
// every interface that is up and multicast-capable. Empty means the system's
// default route for the group.
func queryInterfaces(configured *net.Interface) []net.Interface {
	if configured != nil {
		return []net.Interface{*configured}
	}
	all, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []net.Interface
	for _, ifi := range all {
		if ifi.Flags&net.FlagUp != 0 && ifi.Flags&net.FlagMulticast != 0 {
			out = append(out, ifi)
		}
	}
	return out
}

type srvTarget struct {
	host string
	port int
}

// querier is one query's state. Its maps are guarded by mu, which is held
// while calling found.
type querier struct {
	conns   []*net.UDPConn
	ifaces  []net.Interface
	service string // lower case
	found   func(addr string)

	sendMu sync.Mutex // one question at a time: the interface is per socket

	mu      sync.Mutex
	members map[string]bool      // instance names the service's PTR records name
	srv     map[string]srvTarget // instance name -> SRV target
	ips     map[string][]net.IP  // host name -> addresses
	zones   map[string]string    // link-local IPv6 address -> the zone it came from
	asked   map[string]bool      // instance names asked about directly
	sent    map[string]bool      // addresses passed to found
}

func newQuerier(conns []*net.UDPConn, ifaces []net.Interface, service string, found func(addr string)) *querier {
	return &querier{
		conns:   conns,
		ifaces:  ifaces,
		service: strings.ToLower(service),
		found:   found,
		members: map[string]bool{},
		srv:     map[string]srvTarget{},
		ips:     map[string][]net.IP{},
		zones:   map[string]string{},
		asked:   map[string]bool{},
		sent:    map[string]bool{},
	}
}

func (q *querier) answered() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.sent) > 0
}

// ask multicasts one question on every interface. It fails only when the
// question left on none.
func (q *querier) ask(name string, qtype uint16) error {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = false
	buf, err := m.Pack()
	if err != nil {
		return err
	}
	q.sendMu.Lock()
	defer q.sendMu.Unlock()
	var errs []error
	sent := false
	for _, c := range q.conns {
		v4 := c.LocalAddr().(*net.UDPAddr).IP.To4() != nil
		if len(q.ifaces) == 0 {
			group := groupIPv4
			if !v4 {
				group = groupIPv6
			}
			if _, err := c.WriteToUDP(buf, group); err != nil {
				errs = append(errs, err)
				continue
			}
			sent = true
			continue
		}
		for _, ifi := range q.ifaces {
			var err error
			if v4 {
				if err = ipv4.NewPacketConn(c).SetMulticastInterface(&ifi); err == nil {
					_, err = c.WriteToUDP(buf, groupIPv4)
				}
			} else {
				group := *groupIPv6
				group.Zone = ifi.Name // ff02::/16 is link-local: the zone picks the interface
				_, err = c.WriteToUDP(buf, &group)
			}
			if err != nil {
				errs = append(errs, errors.New(ifi.Name+": "+err.Error()))
				continue
			}
			sent = true
		}
	}
	if !sent {
		return errors.Join(errs...)
	}
	return nil
}

// read handles the answers arriving on c until c is closed.
func (q *querier) read(c *net.UDPConn) {
	buf := make([]byte, 65536)
	for {
		n, src, err := c.ReadFromUDP(buf)
		if err != nil {
			return // closed at the end of the query, or broken: either way done
		}
		var m dns.Msg
		if m.Unpack(buf[:n]) != nil || !m.Response {
			continue
		}
		for _, inst := range q.handle(&m, src) {
			_ = q.ask(inst, dns.TypeANY) // best effort, like the retry
		}
	}
}

// handle records what one response says and reports the addresses of the
// service's instances it completes. Records may come in any section and in
// any packet: hashicorp/mdns sends them all as answers, other responders put
// SRV and address records in the additional section. It returns the
// instances still incomplete that are worth asking about directly (each
// once).
func (q *querier) handle(m *dns.Msg, src *net.UDPAddr) (ask []string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			name := strings.ToLower(rr.Header().Name)
			switch rr := rr.(type) {
			case *dns.PTR:
				if name == q.service {
					q.members[strings.ToLower(rr.Ptr)] = true
				}
			case *dns.SRV:
				q.srv[name] = srvTarget{host: strings.ToLower(rr.Target), port: int(rr.Port)}
			case *dns.A:
				q.addIP(name, rr.A, src)
			case *dns.AAAA:
				q.addIP(name, rr.AAAA, src)
			}
		}
	}
	for inst := range q.members {
		t, ok := q.srv[inst]
		if !ok || len(q.ips[t.host]) == 0 {
			if !q.asked[inst] {
				q.asked[inst] = true
				ask = append(ask, inst)
			}
			continue
		}
		if t.port <= 0 {
			continue
		}
		for _, ip := range q.ips[t.host] {
			host := ip.String()
			if zone := q.zones[host]; zone != "" {
				host += "%" + zone
			}
			addr := net.JoinHostPort(host, strconv.Itoa(t.port))
			if !q.sent[addr] {
				q.sent[addr] = true
				q.found(addr)
			}
		}
	}
	return ask
}

func (q *querier) addIP(host string, ip net.IP, src *net.UDPAddr) {
	if ip.IsUnspecified() {
		return
	}
	for _, known := range q.ips[host] {
		if known.Equal(ip) {
			return
		}
	}
	q.ips[host] = append(q.ips[host], ip)
	// A link-local IPv6 address is only usable with the interface it was
	// seen on, which the packet's source carries.
	if ip.To4() == nil && ip.IsLinkLocalUnicast() && src.Zone != "" {
		q.zones[ip.String()] = src.Zone
	}
}
