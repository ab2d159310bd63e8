package api

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/pubsub"
)

func decodeEvent(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	return m
}

func TestEnvelope(t *testing.T) {
	a := New("shop", RuntimeInfo{})
	plain := &PubSub{Info: Info{Name: "ps"}}
	withTTL := &PubSub{Info: Info{Name: "ps"}, Features: []component.Feature{pubsub.FeatureMessageTTL}}
	const parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	cases := []struct {
		name        string
		ps          *PubSub
		data, ct    string
		md          map[string]string
		traceParent string
		check       func(t *testing.T, ev map[string]any)
	}{
		{name: "json", ps: plain, data: `{"n":12345678901234567890}`, ct: "application/json", check: func(t *testing.T, ev map[string]any) {
			want := map[string]any{"specversion": "1.0", "source": "shop", "type": EventTypeSent, "datacontenttype": "application/json", "topic": "t", "pubsubname": "ps"}
			for k, v := range want {
				if ev[k] != v {
					t.Errorf("%s = %v, want %v", k, ev[k], v)
				}
			}
			if _, ok := ev["expiration"]; ok {
				t.Error("expiration without a TTL")
			}
		}},
		{name: "text default", ps: plain, data: "hello \"world\"\n", check: func(t *testing.T, ev map[string]any) {
			if ev["data"] != "hello \"world\"\n" || ev["datacontenttype"] != "text/plain" {
				t.Errorf("data %q type %v", ev["data"], ev["datacontenttype"])
			}
		}},
		{name: "binary", ps: plain, data: "\x00\xff\x01", ct: "application/octet-stream", check: func(t *testing.T, ev map[string]any) {
			if ev["data_base64"] != "AP8B" || ev["data"] != nil {
				t.Errorf("data_base64 %v data %v", ev["data_base64"], ev["data"])
			}
		}},
		{name: "invalid json stays a string", ps: plain, data: "{oops", ct: "application/json", check: func(t *testing.T, ev map[string]any) {
			if ev["data"] != "{oops" {
				t.Errorf("data %v", ev["data"])
			}
		}},
		{name: "overrides", ps: plain, data: "x", md: map[string]string{"cloudevent.id": "my-id", "cloudevent.source": "src", "cloudevent.type": "typ", "cloudevent.subject": "sub"}, check: func(t *testing.T, ev map[string]any) {
			if ev["id"] != "my-id" || ev["source"] != "src" || ev["type"] != "typ" || ev["subject"] != "sub" {
				t.Errorf("overrides not applied: %v", ev)
			}
		}},
		{name: "trace continues", ps: plain, data: "x", traceParent: parent, check: func(t *testing.T, ev map[string]any) {
			tp, _ := ev["traceparent"].(string)
			if !strings.HasPrefix(tp, "00-0af7651916cd43dd8448eb211c80319c-") || tp == parent || ev["traceid"] != tp {
				t.Errorf("traceparent %q from parent %q", tp, parent)
			}
		}},
		{name: "ttl without broker support", ps: plain, data: "x", md: map[string]string{"ttlInSeconds": "60"}, check: func(t *testing.T, ev map[string]any) {
			exp, err := time.Parse(time.RFC3339, ev["expiration"].(string))
			if err != nil || exp.Before(time.Now().Add(50*time.Second)) || exp.After(time.Now().Add(70*time.Second)) {
				t.Errorf("expiration %v (%v)", ev["expiration"], err)
			}
		}},
		{name: "ttl with broker support", ps: withTTL, data: "x", md: map[string]string{"ttlInSeconds": "60"}, check: func(t *testing.T, ev map[string]any) {
			if _, ok := ev["expiration"]; ok {
				t.Error("expiration set though the broker handles TTL")
			}
		}},
		{name: "cloudevent passthrough", ps: plain, ct: ContentTypeCloudEvent, data: `{"specversion":"1.0","id":"e1","source":"app","type":"t1","data":{"a":1},"topic":"spoofed","ext":"x"}`, check: func(t *testing.T, ev map[string]any) {
			if ev["id"] != "e1" || ev["source"] != "app" || ev["type"] != "t1" || ev["ext"] != "x" || ev["topic"] != "t" || ev["pubsubname"] != "ps" || ev["traceparent"] == nil {
				t.Errorf("passthrough: %v", ev)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, ct, e := a.envelope(c.ps, "t", []byte(c.data), c.ct, c.md, c.traceParent, "", nil)
			if e != nil {
				t.Fatal(e)
			}
			if ct != ContentTypeCloudEvent {
				t.Errorf("content type %q", ct)
			}
			c.check(t, decodeEvent(t, out))
		})
	}
}

func TestEnvelopeRawPayload(t *testing.T) {
	a := New("shop", RuntimeInfo{})
	out, ct, e := a.envelope(&PubSub{Info: Info{Name: "ps"}}, "t", []byte("raw bytes"), "text/csv", map[string]string{"rawPayload": "true"}, "", "", nil)
	if e != nil || string(out) != "raw bytes" || ct != "text/csv" {
		t.Fatalf("raw payload: %q %q %v", out, ct, e)
	}
	if _, _, e := a.envelope(&PubSub{}, "t", nil, "", map[string]string{"rawPayload": "perhaps"}, "", "", nil); e == nil || e.Code != CodePubSubMetadata {
		t.Fatalf("bad rawPayload: %v", e)
	}
}

// FuzzAppendJSONString checks the hand-written JSON string encoder against
// encoding/json: whatever it writes decodes back to the input.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "quote\" backslash\\ ctl\x01\x1f tab\t", "<&>", "ünïcødé", "\xff\xfe bad utf8"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%q encoded as invalid JSON %q: %v", s, b, err)
		}
		if utf8.ValidString(s) && back != s {
			t.Fatalf("%q round-tripped as %q", s, back)
		}
	})
}
