package routing

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/wapr-dev/wapr/host/internal/resources"
)

// cloudEvent decodes a CloudEvent from JSON, as the host does with what a
// broker delivers: numbers in data come out as float64.
func cloudEvent(t testing.TB, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

const (
	orderCreated = `{"specversion":"1.0","id":"1","source":"checkout/web","type":"order.created",
		"datacontenttype":"application/json","topic":"orders","pubsubname":"pubsub",
		"subject":"order-42","time":"2026-01-02T03:04:05Z","traceparent":"00-abc-def-01",
		"data":{"amount":250,"currency":"EUR","items":[{"sku":"a","qty":2}],"express":true}}`
	orderSmall = `{"specversion":"1.0","id":"2","source":"shop/app","type":"order.created",
		"topic":"orders","pubsubname":"pubsub","data":{"amount":99.5}}`
	orderCancelled = `{"specversion":"1.0","id":"3","source":"checkout/web","type":"order.cancelled",
		"topic":"orders","pubsubname":"pubsub","data":"plain text"}`
	noData = `{"specversion":"1.0","id":"4","source":"x","type":"ping","topic":"orders","pubsubname":"pubsub"}`
)

func TestRoute(t *testing.T) {
	rules := []resources.Rule{
		{Match: `event.type == "order.cancelled"`, Path: "/cancelled"},
		{Match: `event.data.amount > 100`, Path: "/large"},
		{Match: `event.source.startsWith("shop/")`, Path: "/shop"},
		{Match: `has(event.data) && event.data == "ping"`, Path: "/never"},
	}
	tests := []struct {
		name        string
		rules       []resources.Rule
		defaultPath string
		event       string
		want        string
		wantOK      bool
	}{
		{"first matching rule wins", rules, "/orders", orderCancelled, "/cancelled", true},
		{"double compared with an int literal", rules, "/orders", orderCreated, "/large", true},
		{"string function", rules, "/orders", orderSmall, "/shop", true},
		{"no rule matches: default", rules, "/orders", noData, "/orders", true},
		{"no rule matches, no default: dropped", rules, "", noData, "", false},
		{"evaluation error counts as no match", []resources.Rule{
			{Match: `event.data.missing.deeper == 1`, Path: "/err"},
			{Match: `event.data.amount + 1 > 2`, Path: "/no-overload"},
			{Match: `event.nosuchfield == "x"`, Path: "/missing"},
		}, "/orders", orderCreated, "/orders", true},
		{"non-bool result at run time counts as no match", []resources.Rule{
			{Match: `event.data.currency`, Path: "/string"},
		}, "", orderCreated, "", false},
		{"empty match always matches", []resources.Rule{
			{Match: `event.type == "nope"`, Path: "/nope"},
			{Match: ``, Path: "/all"},
			{Match: `true`, Path: "/unreached"},
		}, "/orders", orderCreated, "/all", true},
		{"blank match always matches", []resources.Rule{{Match: "  \n", Path: "/all"}}, "", noData, "/all", true},
		{"no rules: default", nil, "/orders", orderCreated, "/orders", true},
		{"no rules, no default", nil, "", orderCreated, "", false},
		{"integer equality with a JSON number", []resources.Rule{
			{Match: `event.data.amount == 250`, Path: "/eq"},
		}, "", orderCreated, "/eq", true},
		{"statically typed mixed comparison", []resources.Rule{
			{Match: `double(event.data.amount) > 100 && int(event.data.amount) == 250`, Path: "/typed"},
		}, "", orderCreated, "/typed", true},
		{"double literal against a JSON number", []resources.Rule{
			{Match: `event.data.amount >= 99.5 && event.data.amount < 100`, Path: "/small"},
		}, "", orderSmall, "/small", true},
		{"lists and macros", []resources.Rule{
			{Match: `event.data.items.exists(i, i.sku == "a" && i.qty >= 2)`, Path: "/sku-a"},
		}, "", orderCreated, "/sku-a", true},
		{"bools, in and size", []resources.Rule{
			{Match: `event.data.express && event.data.currency in ["EUR", "USD"] && size(event.id) == 1`, Path: "/express"},
		}, "", orderCreated, "/express", true},
		{"extension attributes and subject", []resources.Rule{
			{Match: `event.traceparent.startsWith("00-") && event.subject.endsWith("-42")`, Path: "/ext"},
		}, "", orderCreated, "/ext", true},
		{"has on an absent field", []resources.Rule{
			{Match: `!has(event.data)`, Path: "/no-data"},
		}, "", noData, "/no-data", true},
		{"index syntax and matches", []resources.Rule{
			{Match: `event["pubsubname"] == "pubsub" && event.topic.matches("^ord")`, Path: "/idx"},
		}, "", noData, "/idx", true},
		{"data that is not an object", []resources.Rule{
			{Match: `event.data.amount > 1`, Path: "/amount"},
			{Match: `event.data == "plain text"`, Path: "/text"},
		}, "", orderCancelled, "/text", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(tt.rules, tt.defaultPath)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := r.Route(cloudEvent(t, tt.event))
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("Route = %q, %v; want %q, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestRouteNilEvent(t *testing.T) {
	r, err := New([]resources.Rule{{Match: `event.type == "x"`, Path: "/x"}}, "/d")
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := r.Route(nil); got != "/d" || !ok {
		t.Errorf("Route(nil) = %q, %v; want /d, true", got, ok)
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name  string
		rules []resources.Rule
		want  []string // substrings of the error
	}{
		{"syntax error", []resources.Rule{
			{Match: `event.type == "a"`, Path: "/a"},
			{Match: `event.type == `, Path: "/b"},
		}, []string{`rule 1`, `"event.type == "`, "Syntax error"}},
		{"unknown variable", []resources.Rule{{Match: `evnt.type == "a"`, Path: "/a"}},
			[]string{`rule 0`, `"evnt.type == \"a\""`, "undeclared reference to 'evnt'"}},
		{"not a boolean", []resources.Rule{{Match: `1 + 2`, Path: "/a"}},
			[]string{`rule 0`, `"1 + 2"`, "must be a boolean expression, not int"}},
		{"unknown function", []resources.Rule{{Match: `event.type.shout()`, Path: "/a"}},
			[]string{`rule 0`, "undeclared reference to 'shout'"}},
		{"missing path", []resources.Rule{{Match: `true`}},
			[]string{`rule 0`, `"true"`, "path is required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(tt.rules, "/d")
			if err == nil {
				t.Fatalf("New = %v, want an error", r)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestConcurrentRoute runs one Router from many goroutines; with -race it
// checks that Route shares nothing mutable.
func TestConcurrentRoute(t *testing.T) {
	r, err := New([]resources.Rule{
		{Match: `event.type == "order.cancelled"`, Path: "/cancelled"},
		{Match: `event.data.amount > 100`, Path: "/large"},
	}, "/orders")
	if err != nil {
		t.Fatal(err)
	}
	events := []struct {
		event map[string]any
		want  string
	}{
		{cloudEvent(t, orderCreated), "/large"},
		{cloudEvent(t, orderSmall), "/orders"},
		{cloudEvent(t, orderCancelled), "/cancelled"},
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				e := events[(g+i)%len(events)]
				if got, _ := r.Route(e.event); got != e.want {
					t.Errorf("Route = %q, want %q", got, e.want)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestRouteAllocs bounds allocations on the delivery path. CEL boxes values
// it reads from the event, so Route cannot be free, but it must not grow with
// anything but the work the expressions do.
func TestRouteAllocs(t *testing.T) {
	r, err := New([]resources.Rule{{Match: `event.type == "order.cancelled"`, Path: "/c"}}, "/d")
	if err != nil {
		t.Fatal(err)
	}
	event := cloudEvent(t, orderCreated)
	allocs := testing.AllocsPerRun(100, func() { r.Route(event) })
	t.Logf("%.0f allocations per Route", allocs)
	if allocs > 8 {
		t.Errorf("Route allocates %.0f times, want at most 8", allocs)
	}
	empty, err := New(nil, "/d")
	if err != nil {
		t.Fatal(err)
	}
	if allocs := testing.AllocsPerRun(100, func() { empty.Route(event) }); allocs != 0 {
		t.Errorf("Route without rules allocates %.0f times, want 0", allocs)
	}
}

func BenchmarkRoute(b *testing.B) {
	r, err := New([]resources.Rule{
		{Match: `event.type == "order.cancelled"`, Path: "/cancelled"},
		{Match: `event.source.startsWith("shop/")`, Path: "/shop"},
		{Match: `event.data.amount > 100`, Path: "/large"},
	}, "/orders")
	if err != nil {
		b.Fatal(err)
	}
	event := cloudEvent(b, orderCreated)
	b.ReportAllocs()
	for b.Loop() {
		if path, _ := r.Route(event); path != "/large" {
			b.Fatalf("Route = %q", path)
		}
	}
}
