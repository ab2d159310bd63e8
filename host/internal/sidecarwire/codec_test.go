package sidecarwire

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/grpc/mem"

	"github.com/wapr-dev/wapr/host/internal/api"
)

// marshal encodes v into one byte slice, as it crosses the wire.
func marshal(t testing.TB, v any) []byte {
	t.Helper()
	bs, err := codec{}.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Free()
	return bs.Materialize()
}

func unmarshal(b []byte, v any) error {
	return codec{}.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, v)
}

func allBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// The worked example of codec.go, byte for byte.
func TestCodecGolden(t *testing.T) {
	req := &api.InvokeRequest{AppID: "b", CallerAppID: "a", Verb: "GET", Method: "m", Query: "x=1",
		Headers: []api.Header{{Key: "k", Value: "v"}}}
	want := "01" + "14" + "0162" + "0161" + "00" + "03474554" + "016d" + "03783d31" + "01" + "016b" + "0176"
	if got := hex.EncodeToString(marshal(t, req)); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	answer := &response{res: &api.InvokeResponse{Status: 201, Headers: []api.Header{{Key: "k", Value: "v"}}, Body: []byte("ok")}}
	if got, want := hex.EncodeToString(marshal(t, answer)), "02"+"07"+"c901"+"01"+"016b"+"0176"+"6f6b"; got != want {
		t.Errorf("answer: got %s, want %s", got, want)
	}
	failure := &response{err: &remoteError{code: api.CodeDirectInvoke, message: "no", misrouted: true}}
	if got, want := hex.EncodeToString(marshal(t, failure)), "03"+"05"+"18"+"01"+"026e6f"; got != want {
		t.Errorf("error: got %s, want %s", got, want)
	}
}

var codecRequests = map[string]*api.InvokeRequest{
	"empty": {},
	"full": {
		AppID: "orders.prod", CallerAppID: "checkout", CallerNamespace: "prod", Verb: "PUT",
		Method: "orders/new%2Fx", Query: "id=42&tag=a%20b&tag=c",
		Headers: []api.Header{
			{Key: "Content-Type", Value: "application/octet-stream"},
			{Key: "X-Repeated", Value: "1"},
			{Key: "X-Repeated", Value: "2"},
			{Key: "X-Binary", Value: "\x00\xff\r\n"},
			{Key: "", Value: ""},
		},
		Body: allBytes(1000),
	},
	"long fields": {
		AppID: strings.Repeat("a", 300), Method: strings.Repeat("m", 70000),
		Headers: []api.Header{{Key: "k", Value: strings.Repeat("v", 200)}},
		Body:    allBytes(1 << 17),
	},
}

var codecResponses = map[string]*response{
	"answer": {res: &api.InvokeResponse{Status: 200,
		Headers: []api.Header{{Key: "Content-Type", Value: "text/plain"}, {Key: "X-A", Value: "1"}, {Key: "X-A", Value: "2"}},
		Body:    allBytes(700)}},
	"empty answer":     {res: &api.InvokeResponse{Status: 204}},
	"error":            {err: &remoteError{code: api.CodeDirectInvoke, message: "failed to invoke, id: x, err: app down"}},
	"misrouted":        {err: &remoteError{code: api.CodeDirectInvoke, message: "elsewhere", misrouted: true}},
	"error no message": {err: &remoteError{code: api.CodeInternal}},
}

// sameRequest compares two requests, an empty and a nil slice alike.
func sameRequest(a, b *api.InvokeRequest) bool {
	return a.AppID == b.AppID && a.CallerAppID == b.CallerAppID && a.CallerNamespace == b.CallerNamespace && a.Verb == b.Verb &&
		a.Method == b.Method && a.Query == b.Query && bytes.Equal(a.Body, b.Body) &&
		sameHeaders(a.Headers, b.Headers)
}

func sameResponse(a, b *response) bool {
	switch {
	case (a.err == nil) != (b.err == nil), (a.res == nil) != (b.res == nil):
		return false
	case a.err != nil:
		return *a.err == *b.err
	case a.res != nil:
		return a.res.Status == b.res.Status && bytes.Equal(a.res.Body, b.res.Body) && sameHeaders(a.res.Headers, b.res.Headers)
	}
	return true
}

func sameHeaders(a, b []api.Header) bool {
	return len(a) == len(b) && (len(a) == 0 || reflect.DeepEqual(a, b))
}

// headEnd is where msg's head ends: the body follows.
func headEnd(t *testing.T, msg []byte) int {
	t.Helper()
	var r reader
	r.s = string(msg[1:])
	n := r.uvarint()
	if r.bad {
		t.Fatal("no head length")
	}
	return len(msg) - len(r.s) + int(n)
}

func TestCodecRoundTrip(t *testing.T) {
	for name, req := range codecRequests {
		t.Run("request/"+name, func(t *testing.T) {
			msg := marshal(t, req)
			var got api.InvokeRequest
			if err := unmarshal(msg, &got); err != nil {
				t.Fatal(err)
			}
			if !sameRequest(&got, req) {
				t.Errorf("got %+v, want %+v", got, req)
			}
			// Every cut inside the head is refused (a cut body cannot be
			// told, but gRPC frames each message with its length).
			for i := 0; i < headEnd(t, msg); i += 1 + i/256 { // every cut of a short head
				if err := unmarshal(msg[:i], new(api.InvokeRequest)); err == nil {
					t.Fatalf("a request cut to %d of %d bytes was accepted", i, len(msg))
				}
			}
			if err := unmarshal(msg, new(response)); err == nil {
				t.Error("a request was accepted as a response")
			}
		})
	}
	for name, res := range codecResponses {
		t.Run("response/"+name, func(t *testing.T) {
			msg := marshal(t, res)
			var got response
			if err := unmarshal(msg, &got); err != nil {
				t.Fatal(err)
			}
			if !sameResponse(&got, res) {
				t.Errorf("got %+v, want %+v", got, res)
			}
			for i := range headEnd(t, msg) {
				if err := unmarshal(msg[:i], new(response)); err == nil {
					t.Fatalf("a response cut to %d of %d bytes was accepted", i, len(msg))
				}
			}
			if err := unmarshal(msg, new(api.InvokeRequest)); err == nil {
				t.Error("a response was accepted as a request")
			}
			if res.err != nil {
				if err := unmarshal(append(msg, 0), new(response)); err == nil {
					t.Error("an error message with a body was accepted")
				}
			}
		})
	}
}

func TestCodecRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  string // hex
		into any
	}{
		{"nothing", "", new(api.InvokeRequest)},
		{"unknown kind", "09" + "00", new(response)},
		{"head longer than the message", "01" + "05" + "00", new(api.InvokeRequest)},
		{"bytes left in the head", "02" + "04" + "c801" + "00" + "ff", new(response)},
		{"varint too long", "02" + "0b" + "ffffffffffffffffffff01", new(response)},
		{"more headers than bytes", "02" + "04" + "c801" + "05" + "00", new(response)},
		{"status over 999", "02" + "03" + "e807" + "00", new(response)},
		{"unknown error flag", "03" + "03" + "18" + "02" + "00", new(response)},
		{"error code too large", "03" + "05" + "8080" + "04" + "00" + "00", new(response)},
		{"answer decoded as request", "02" + "02" + "c801", new(api.InvokeRequest)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := hex.DecodeString(tc.msg)
			if err != nil {
				t.Fatal(err)
			}
			if err := unmarshal(b, tc.into); err == nil {
				t.Errorf("%s was accepted", tc.msg)
			}
		})
	}
	if _, err := (codec{}).Marshal(&response{}); err == nil {
		t.Error("an empty response was encoded")
	}
	if _, err := (codec{}).Marshal("text"); err == nil {
		t.Error("a string was encoded")
	}
	if err := unmarshal([]byte{1, 0}, new(string)); err == nil {
		t.Error("decoded into a string")
	}
}

// Anything a peer sends either is refused or decodes to a message that
// encodes and decodes to itself; nothing panics.
func FuzzDecode(f *testing.F) {
	for _, req := range codecRequests {
		if msg := marshal(f, req); len(msg) < 4096 { // small seeds mutate faster
			f.Add(msg)
		}
	}
	for _, res := range codecResponses {
		f.Add(marshal(f, res))
	}
	f.Add([]byte{3, 2, 0, 0})
	f.Fuzz(func(t *testing.T, msg []byte) {
		var req api.InvokeRequest
		if unmarshal(msg, &req) == nil {
			var again api.InvokeRequest
			if err := unmarshal(marshal(t, &req), &again); err != nil || !sameRequest(&again, &req) {
				t.Fatalf("request %x: re-encoded, it decodes to %+v (%v), not %+v", msg, again, err, req)
			}
		}
		var res response
		if unmarshal(msg, &res) == nil {
			var again response
			if err := unmarshal(marshal(t, &res), &again); err != nil || !sameResponse(&again, &res) {
				t.Fatalf("response %x: re-encoded, it decodes to %+v (%v), not %+v", msg, again, err, res)
			}
		}
	})
}

// Whatever a request holds, it arrives as sent.
func FuzzRoundTrip(f *testing.F) {
	f.Add("orders", "checkout", "POST", "a/b%2F", "q=1", "Content-Type", "text/plain", 3, []byte("body"), 201)
	f.Add("", "", "", "", "", "", "", 0, []byte(nil), 0)
	f.Fuzz(func(t *testing.T, callee, caller, verb, method, query, key, value string, n int, body []byte, status int) {
		n = min(max(n, 0), 64)
		headers := make([]api.Header, n)
		for i := range headers {
			headers[i] = api.Header{Key: key, Value: value[:i%(len(value)+1)]}
		}
		req := &api.InvokeRequest{AppID: callee, CallerAppID: caller, Verb: verb, Method: method, Query: query, Headers: headers, Body: body}
		var got api.InvokeRequest
		if err := unmarshal(marshal(t, req), &got); err != nil || !sameRequest(&got, req) {
			t.Fatalf("request: got %+v (%v), want %+v", got, err, req)
		}
		res := &response{res: &api.InvokeResponse{Status: min(max(status, 0), 999), Headers: headers, Body: body}}
		var gotRes response
		if err := unmarshal(marshal(t, res), &gotRes); err != nil || !sameResponse(&gotRes, res) {
			t.Fatalf("answer: got %+v (%v), want %+v", gotRes.res, err, res.res)
		}
		fail := &response{err: &remoteError{code: api.Code(min(max(n, 0), 100)), message: value, misrouted: n%2 == 1}}
		if err := unmarshal(marshal(t, fail), &gotRes); err != nil || !sameResponse(&gotRes, fail) {
			t.Fatalf("error: got %+v (%v), want %+v", gotRes.err, err, fail.err)
		}
	})
}

// Allocation budgets: encoding takes a pooled buffer (or, under 1 KiB, makes
// one) and the slice of buffers; decoding copies the message once, turns the
// head into one string, and makes the headers slice (and, for an answer, the
// InvokeResponse).
func TestCodecAllocs(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation counts")
	}
	req := codecRequests["full"]        // 1000 bytes of body: one pooled buffer
	big := codecRequests["long fields"] // the body in a buffer of its own
	res := codecResponses["answer"]     // under 1 KiB: one buffer, not pooled
	reqMsg := mem.BufferSlice{mem.SliceBuffer(marshal(t, req))}
	resMsg := mem.BufferSlice{mem.SliceBuffer(marshal(t, res))}
	var gotReq api.InvokeRequest
	var gotRes response
	for _, tc := range []struct {
		name   string
		budget float64
		run    func()
	}{
		{"marshal request", 1, func() { bs, _ := codec{}.Marshal(req); bs.Free() }},
		{"marshal large request", 2, func() { bs, _ := codec{}.Marshal(big); bs.Free() }},
		{"marshal answer", 3, func() { bs, _ := codec{}.Marshal(res); bs.Free() }},
		{"unmarshal request", 3, func() { codec{}.Unmarshal(reqMsg, &gotReq) }},
		{"unmarshal answer", 4, func() { codec{}.Unmarshal(resMsg, &gotRes) }},
	} {
		if got := testing.AllocsPerRun(200, tc.run); got > tc.budget {
			t.Errorf("%s: %.0f allocations, budget %.0f", tc.name, got, tc.budget)
		}
	}
}

func BenchmarkCodec(b *testing.B) {
	req := codecRequests["full"]
	b.Run("request", func(b *testing.B) {
		b.ReportAllocs()
		var got api.InvokeRequest
		for b.Loop() {
			bs, _ := codec{}.Marshal(req)
			codec{}.Unmarshal(bs, &got)
			bs.Free()
		}
	})
	res := codecResponses["answer"]
	b.Run("answer", func(b *testing.B) {
		b.ReportAllocs()
		var got response
		for b.Loop() {
			bs, _ := codec{}.Marshal(res)
			codec{}.Unmarshal(bs, &got)
			bs.Free()
		}
	})
}
