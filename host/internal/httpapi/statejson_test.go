package httpapi

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

var stateItemsSeeds = []string{
	`[{"key":"k","value":"v"}]`,
	`[{"key":"k","value":{"n":42,"s":"a \"quoted\" } ] text","l":[1,{"x":null}]}}]`,
	` [ { "key" : "k1" , "value" : [ 1 , 2 ] } , {"value": 3.5e-2, "key":"k2"} ] `,
	`[{"key":"k","value":null}]`, `[{"key":"k"}]`, `[{"value":true}]`, `[]`, `null`, `{}`, `[null]`,
	`[{"key":"k","value":"v","etag":"1"}]`, `[{"key":"k","value":"v","metadata":{"ttlInSeconds":"5"}}]`,
	`[{"Key":"k","value":1}]`, `[{"key":"k","key":"j","value":1}]`, `[{"key":"k\u0041","value":1}]`,
	`[{"key":"k","value":1}] x`, `[{"key":"k","value":01}]`, `[{"key":"k","value":tru}]`, `[{"key":"k","value":}]`,
	`[{"key":"k","value":{"a":1]}]`, `[{"key":"k","value":"\x"}]`, `[{"key":"\xff","value":1}]`, `[{"key":1,"value":1}]`,
	`[{"key":"k","value":1},]`, `[{"key":"k","value":1,}]`, `[{"key":"k" "value":1}]`, `[{"key":"k","value":"a` + "\x01" + `"}]`,
	`[{"key":"k","value":[1,2}]`, `[{"key":"k","value":"unterminated}]`, `[{"key":"k","value":-}]`,
}

// TestDecodeStateItems: the fast path gives what json.Unmarshal gives, and
// takes the common bodies.
func TestDecodeStateItems(t *testing.T) {
	for _, body := range stateItemsSeeds {
		checkStateItems(t, []byte(body))
	}
	for _, body := range stateItemsSeeds[:4] {
		if _, ok := decodeSimpleItems([]byte(body)); !ok {
			t.Errorf("%s: not taken by the fast path", body)
		}
	}
}

func FuzzDecodeStateItems(f *testing.F) {
	for _, body := range stateItemsSeeds {
		f.Add([]byte(body))
	}
	f.Fuzz(checkStateItems)
}

// checkStateItems compares decodeStateItems with json.Unmarshal on body,
// and checks the items do not alias body.
func checkStateItems(t *testing.T, body []byte) {
	var want []stateItem
	wantErr := json.Unmarshal(body, &want)
	own := bytes.Clone(body) // the fuzzer's input is not ours to change
	got, gotErr := decodeStateItems(own)
	if (wantErr == nil) != (gotErr == nil) || (wantErr != nil && wantErr.Error() != gotErr.Error()) {
		t.Fatalf("%q: error %v, json.Unmarshal says %v", body, gotErr, wantErr)
	}
	if wantErr != nil {
		return
	}
	if len(got) != len(want) || (len(got) > 0 && !reflect.DeepEqual(got, want)) {
		t.Fatalf("%q: decoded %+v, json.Unmarshal gives %+v", body, got, want)
	}
	for i := range own {
		own[i] = '#'
	}
	for i := range got {
		if !reflect.DeepEqual(got[i].Value, want[i].Value) {
			t.Fatalf("item %d's value aliases the body", i)
		}
	}
}
