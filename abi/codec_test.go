package abi

import (
	"bytes"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden vectors in testdata")

// message is what every ABI message offers.
type message interface {
	Encode(e *Encoder)
	Decode(b []byte) error
}

// Golden samples: each is encoded, compared with testdata/<name>.hex, and
// decoded back. The same files are decoded by the guest SDK's tests and
// listed in SPEC.md.
var golden = []struct {
	name string
	msg  message
	new  func() message
}{
	{"descriptor", &Descriptor{ABIMinor: 3, Types: []string{"state.redis"}, Version: "1.0.0", Features: []string{"ETAG", "TTL"}, EndpointKeys: []string{"redisHost"}, Name: "wapr-state-redis"}, func() message { return new(Descriptor) }},
	{"init", &InitRequest{Name: "cache", Type: "state.redis", Metadata: map[string]string{"redisHost": "127.0.0.1:6379", "redisDB": "0"}}, func() message { return new(InitRequest) }},
	{"error", &ErrorRecord{Message: "etag mismatch", Key: "k"}, func() message { return new(ErrorRecord) }},
	{"state_get", &StateGetRequest{Key: "app||k", Consistency: ConsistencyStrong}, func() message { return new(StateGetRequest) }},
	{"state_get_response", &StateGetResponse{Data: []byte(`{"a":1}`), ETag: "7", Metadata: map[string]string{"ttlExpireTime": "2026-01-02T03:04:05Z"}}, func() message { return new(StateGetResponse) }},
	{"state_set", &StateSetRequest{Key: "k", Value: []byte("1"), ETag: "", HasETag: true, Metadata: map[string]string{"ttlInSeconds": "60"}, Concurrency: ConcurrencyFirstWrite}, func() message { return new(StateSetRequest) }},
	{"state_delete", &StateDeleteRequest{Key: "k", ETag: "3", HasETag: true}, func() message { return new(StateDeleteRequest) }},
	{"state_bulk_get", &StateBulkGetRequest{Requests: []StateGetRequest{{Key: "a"}, {Key: "b"}}}, func() message { return new(StateBulkGetRequest) }},
	{"state_bulk_get_response", &StateBulkGetResponse{Items: []StateBulkGetItem{{Key: "a", Found: true, Data: []byte("1"), ETag: "1"}, {Key: "b"}}}, func() message { return new(StateBulkGetResponse) }},
	{"state_bulk_set", &StateBulkSetRequest{Requests: []StateSetRequest{{Key: "a", Value: []byte("1")}}}, func() message { return new(StateBulkSetRequest) }},
	{"bulk_result", &BulkResult{Errors: []ItemError{{Key: "b", Status: StatusETagMismatch, Message: "etag mismatch", Index: 0, HasIndex: true}}}, func() message { return new(BulkResult) }},
	{"state_transact", &StateTransactRequest{Operations: []StateOperation{{Set: &StateSetRequest{Key: "a", Value: []byte("1")}}, {Delete: &StateDeleteRequest{Key: "b"}}}}, func() message { return new(StateTransactRequest) }},
	{"publish", &PublishRequest{Topic: "orders", Data: []byte(`{"id":1}`), ContentType: "application/cloudevents+json"}, func() message { return new(PublishRequest) }},
	{"bulk_publish", &BulkPublishRequest{Requests: []PublishRequest{{Topic: "orders", Data: []byte(`{"id":1}`)}, {Topic: "audit", Data: []byte("x"), ContentType: "text/plain"}}}, func() message { return new(BulkPublishRequest) }},
	{"bulk_publish_result", &BulkResult{Errors: []ItemError{{Key: "audit", Status: StatusInvalidArgument, Message: "bad", Index: 1, HasIndex: true}}}, func() message { return new(BulkResult) }},
	{"poll", &PollRequest{Topic: "orders", MaxMessages: 10, MaxWaitMillis: 100}, func() message { return new(PollRequest) }},
	{"poll_response", &PollResponse{Messages: []Message{{AckToken: []byte("1-0"), Topic: "orders", Data: []byte("x")}}}, func() message { return new(PollResponse) }},
	{"ack", &AckRequest{Topic: "orders", Tokens: [][]byte{[]byte("1-0"), []byte("2-0")}}, func() message { return new(AckRequest) }},
	{"invoke", &InvokeRequest{Operation: "get", Metadata: map[string]string{"path": "/items"}}, func() message { return new(InvokeRequest) }},
	{"invoke_response", &InvokeResponse{Data: []byte("ok"), ContentType: "text/plain", Metadata: map[string]string{"statusCode": "200"}}, func() message { return new(InvokeResponse) }},
	{"http_request", &HTTPRequest{Method: "GET", URL: "http://example.com/x", Headers: map[string]string{"Accept": "*/*"}}, func() message { return new(HTTPRequest) }},
}

func readHex(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name+".hex"))
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	b, err := hex.DecodeString(strings.Join(strings.Fields(string(raw)), ""))
	if err != nil {
		t.Fatalf("%s.hex: %v", name, err)
	}
	return b
}

// formatHex writes b as lines of 16 space-separated bytes.
func formatHex(b []byte) string {
	var sb strings.Builder
	for i := 0; i < len(b); i += 16 {
		end := min(i+16, len(b))
		for j := i; j < end; j++ {
			if j > i {
				sb.WriteByte(' ')
			}
			sb.WriteString(hex.EncodeToString(b[j : j+1]))
		}
		sb.WriteByte('\n')
	}
	return sb.String()
}

func TestGoldenVectors(t *testing.T) {
	for _, g := range golden {
		t.Run(g.name, func(t *testing.T) {
			var e Encoder
			g.msg.Encode(&e)
			got := e.Bytes()
			if *update {
				if err := os.WriteFile(filepath.Join("testdata", g.name+".hex"), []byte(formatHex(got)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want := readHex(t, g.name)
			if !bytes.Equal(got, want) {
				t.Fatalf("encoding differs from testdata/%s.hex:\ngot  %x\nwant %x", g.name, got, want)
			}
			back := g.new()
			if err := back.Decode(want); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(normalizeMsg(back), normalizeMsg(g.msg)) {
				t.Fatalf("decoded %#v, want %#v", back, g.msg)
			}
		})
	}
}

// normalizeMsg re-encodes m, so nil and empty slices compare equal.
func normalizeMsg(m message) string {
	var e Encoder
	m.Encode(&e)
	return string(e.Bytes())
}

// TestUnknownFieldsSkipped: a newer peer's extra fields, of every wire type,
// are ignored by an older decoder.
func TestUnknownFieldsSkipped(t *testing.T) {
	var e Encoder
	e.U64(900, 42)
	e.String(1, "k")
	mark := e.Begin(901)
	e.String(1, "nested")
	e.End(mark)
	e.Map(902, map[string]string{"x": "y"})
	e.Blob(2, []byte("v"))
	var m StateSetRequest
	if err := m.Decode(e.Bytes()); err != nil {
		t.Fatal(err)
	}
	if m.Key != "k" || string(m.Value) != "v" || m.HasETag {
		t.Fatalf("decoded %+v", m)
	}
}

func TestMalformedInput(t *testing.T) {
	cases := map[string][]byte{
		"short header":        {1, 0, 2},
		"length past end":     {1, 0, 2, 10, 0, 0, 0, 'a'},
		"u64 of wrong length": {1, 0, 1, 4, 0, 0, 0, 1, 2, 3, 4},
		"wrong wire type":     {1, 0, 1, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0},
		"map count too big":   {2, 0, 4, 4, 0, 0, 0, 0xff, 0xff, 0xff, 0xff},
		"map trailing bytes":  {2, 0, 4, 5, 0, 0, 0, 0, 0, 0, 0, 9},
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			var m StateGetRequest
			if err := m.Decode(b); err == nil {
				t.Fatalf("no error decoding %x", b)
			}
		})
	}
}

func TestPack(t *testing.T) {
	if got := Pack(StatusNotFound, 12); got != 0x0000_0001_0000_000C {
		t.Fatalf("Pack = %#x", got)
	}
	s, n := Unpack(0x0000_0002_0000_0100)
	if s != StatusETagMismatch || n != 256 {
		t.Fatalf("Unpack = %v %d", s, n)
	}
	if StatusETagMismatch.String() != "ETAG_MISMATCH" || Status(77).String() != "STATUS_77" {
		t.Fatal("status names")
	}
}

func BenchmarkStateSetRoundTrip(b *testing.B) {
	req := StateSetRequest{Key: "app||key", Value: bytes.Repeat([]byte("v"), 1024), ETag: "12", HasETag: true, Metadata: map[string]string{"ttlInSeconds": "60"}}
	var e Encoder
	var back StateSetRequest
	b.ReportAllocs()
	for b.Loop() {
		e.Reset(e.Bytes())
		req.Encode(&e)
		if err := back.Decode(e.Bytes()); err != nil {
			b.Fatal(err)
		}
	}
}

func TestEncodeAllocationBudget(t *testing.T) {
	req := StateGetRequest{Key: "app||key"}
	var e Encoder
	req.Encode(&e)
	allocs := testing.AllocsPerRun(100, func() {
		e.Reset(e.Bytes())
		req.Encode(&e)
	})
	if allocs != 0 {
		t.Fatalf("encoding a get request allocates %.0f times into a reused buffer, want 0", allocs)
	}
}
