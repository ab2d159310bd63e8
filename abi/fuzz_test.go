package abi

import "testing"

// FuzzDecode feeds arbitrary bytes to every message decoder: none may
// panic, and whatever decodes must survive an encode/decode round trip.
func FuzzDecode(f *testing.F) {
	for _, g := range golden {
		var e Encoder
		g.msg.Encode(&e)
		f.Add(e.Bytes())
	}
	f.Add([]byte{})
	f.Add([]byte{1, 0, 4, 4, 0, 0, 0, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, g := range golden {
			m := g.new()
			if err := m.Decode(b); err != nil {
				continue
			}
			var e Encoder
			m.Encode(&e)
			again := g.new()
			if err := again.Decode(e.Bytes()); err != nil {
				t.Fatalf("%s: re-encoded message does not decode: %v", g.name, err)
			}
			if normalizeMsg(again) != normalizeMsg(m) {
				t.Fatalf("%s: round trip changed the message", g.name)
			}
		}
	})
}
