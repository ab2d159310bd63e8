package mdns

import (
	"net"
	"slices"
	"testing"

	"github.com/miekg/dns"
)

func rr(t *testing.T, s string) dns.RR {
	t.Helper()
	r, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestQuerierHandle feeds responses to a querier without a network: which
// records make an address, and which are ignored.
func TestQuerierHandle(t *testing.T) {
	const svc = "b._wapr._tcp.local."
	from := &net.UDPAddr{IP: net.IPv6linklocalallnodes, Port: 5353, Zone: "eth0"}
	tests := []struct {
		name    string
		answer  []string
		extra   []string
		want    []string
		wantAsk []string
	}{
		{
			name: "hashicorp/mdns: everything in the answer section",
			answer: []string{
				"b._wapr._tcp.local. 120 IN PTR h-1-40002.b._wapr._tcp.local.",
				"h-1-40002.b._wapr._tcp.local. 120 IN SRV 10 1 40002 h-1-40002.local.",
				"h-1-40002.local. 120 IN A 127.0.0.1",
				`h-1-40002.b._wapr._tcp.local. 120 IN TXT "wapr=1"`,
			},
			want: []string{"127.0.0.1:40002"},
		},
		{
			name:   "other responders: SRV and addresses as additional records, names in another case",
			answer: []string{"B._wapr._tcp.local. 120 IN PTR x.B._wapr._tcp.local."},
			extra: []string{
				"x.B._wapr._tcp.local. 120 IN SRV 0 0 3500 Host.local.",
				"host.local. 120 IN A 10.0.0.7",
				"host.local. 120 IN AAAA fd00::7",
			},
			want: []string{"10.0.0.7:3500", "[fd00::7]:3500"},
		},
		{
			name:   "a link-local address keeps the interface it came from",
			answer: []string{"b._wapr._tcp.local. 120 IN PTR x.b._wapr._tcp.local.", "x.b._wapr._tcp.local. 120 IN SRV 0 0 3500 h.local.", "h.local. 120 IN AAAA fe80::1"},
			want:   []string{"[fe80::1%eth0]:3500"},
		},
		{
			name:    "an instance without its SRV is asked about",
			answer:  []string{"b._wapr._tcp.local. 120 IN PTR x.b._wapr._tcp.local."},
			wantAsk: []string{"x.b._wapr._tcp.local."},
		},
		{
			name:   "another service's instance is ignored",
			answer: []string{"c._wapr._tcp.local. 120 IN PTR y.c._wapr._tcp.local.", "y.c._wapr._tcp.local. 120 IN SRV 0 0 1 y.local.", "y.local. 120 IN A 10.0.0.9"},
		},
		{
			name:   "an unspecified address is ignored",
			answer: []string{"b._wapr._tcp.local. 120 IN PTR x.b._wapr._tcp.local.", "x.b._wapr._tcp.local. 120 IN SRV 0 0 3500 h.local.", "h.local. 120 IN A 0.0.0.0", "h.local. 120 IN A 10.0.0.1"},
			want:   []string{"10.0.0.1:3500"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			q := newQuerier(nil, nil, svc, func(addr string) { got = append(got, addr) })
			m := new(dns.Msg)
			m.Response = true
			for _, s := range tt.answer {
				m.Answer = append(m.Answer, rr(t, s))
			}
			for _, s := range tt.extra {
				m.Extra = append(m.Extra, rr(t, s))
			}
			ask := q.handle(m, from)
			// The same response again reports nothing new and asks nothing.
			ask = append(ask, q.handle(m, from)...)
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("found %q, want %q", got, tt.want)
			}
			if !slices.Equal(ask, tt.wantAsk) {
				t.Errorf("asked about %q, want %q", ask, tt.wantAsk)
			}
		})
	}
}
