package bindings_test

import (
	"context"
	"fmt"
	"github.com/wapr-dev/wapr/conformance/internal/bindingtest"
	"slices"
	"strings"
	"testing"
	"time"

	httpbinding "github.com/wapr-dev/wapr/builtin/bindings/http"
	"github.com/wapr-dev/wapr/conformance"
	bindingsuite "github.com/wapr-dev/wapr/conformance/bindings"
	"github.com/wapr-dev/wapr/conformance/internal/broken"
	"github.com/wapr-dev/wapr/host/component/bindings"
)

// TestHTTP runs the suite against bindings.http and a local server, as the
// driver's own tests would.
func TestHTTP(t *testing.T) {
	srv := bindingtest.ItemServer(t)
	at := func(path string) map[string]string { return map[string]string{"path": path} }
	features := bindingsuite.Run(t, func() bindings.Output { return httpbinding.New() }, bindingsuite.Config{
		Type:     "bindings.http",
		Metadata: map[string]string{"url": srv.URL + "/base"},
		Operations: []bindingsuite.Operation{
			{Operation: "create", Data: []byte(`{"n":1}`), Metadata: at("/items/1"), Check: bindingtest.Status(201)},
			{Operation: "get", Metadata: at("/items/1"), Check: bindingtest.Body(`{"n":1}`)},
			{Operation: "post", Data: []byte(`{"n":2}`), Metadata: at("/items/2"), Check: bindingtest.Status(201)},
			{Operation: "put", Data: []byte(`{"n":3}`), Metadata: at("/items/2"), Check: bindingtest.Status(200)},
			{Operation: "patch", Data: []byte(`{"n":4}`), Metadata: at("/items/2"), Check: bindingtest.Status(200)},
			{Name: "get-after-patch", Operation: "get", Metadata: at("/items/2"), Check: bindingtest.Body(`{"n":4}`)},
			{Operation: "head", Metadata: at("/items/2"), Check: bindingtest.Status(200)},
			{Operation: "options", Check: bindingtest.Status(200)},
			{Operation: "trace", Check: bindingtest.Status(200)},
			{Operation: "delete", Metadata: at("/items/1"), Check: bindingtest.Status(204)},
		},
	})
	for _, f := range features {
		t.Log(f)
		if f.Status == conformance.StatusFail || f.Feature != bindingsuite.FeatureInput && f.Status != conformance.StatusPass {
			t.Errorf("bindings.http: %v", f)
		}
	}
}

// crud exercises the test binding: create, get, list, delete.
var crud = []bindingsuite.Operation{
	{Operation: "create", Data: []byte("hello"), Metadata: map[string]string{"key": "k"}},
	{Operation: "get", Metadata: map[string]string{"key": "k"}, Check: func(r *bindings.InvokeResponse) error {
		if r == nil || string(r.Data) != "hello" {
			return fmt.Errorf("got %+v, want data hello", r)
		}
		return nil
	}},
	{Operation: "list", Check: func(r *bindings.InvokeResponse) error {
		if r == nil || string(r.Data) != `["k"]` {
			return fmt.Errorf("got %+v, want [\"k\"]", r)
		}
		return nil
	}},
	{Operation: "delete", Metadata: map[string]string{"key": "k"}},
}

// runRecorded runs the suite on the test binding under a conformance.Runner
// and returns the failed leaf cases and the verdicts.
func runRecorded(t *testing.T, faults broken.BindingFaults) ([]string, map[string]conformance.FeatureResult) {
	t.Helper()
	b := broken.NewBinding(faults)
	cfg := bindingsuite.Config{
		Operations: crud,
		Input: &bindingsuite.Input{
			Trigger: func(ctx context.Context) error {
				_, err := b.Invoke(ctx, &bindings.InvokeRequest{Operation: "create", Data: []byte("event!"), Metadata: map[string]string{"key": "e"}})
				return err
			},
			Check: func(ev *bindings.Event) error {
				if string(ev.Data) != "event!" {
					return fmt.Errorf("data %q", ev.Data)
				}
				return nil
			},
		},
		MaxReadDuration: 300 * time.Millisecond,
	}
	var r conformance.Runner
	var features []conformance.FeatureResult
	r.Run(t.Context(), "bindings", func(ct conformance.T) {
		features = bindingsuite.Run(ct, func() bindings.Output { return b }, cfg)
	})
	var failed []string
	for _, res := range r.Results() {
		if strings.Count(res.Name, "/") == 2 && res.Status == conformance.StatusFail {
			failed = append(failed, strings.TrimPrefix(res.Name, "bindings/"))
			t.Logf("%s: %s", res.Name, res.Reason)
		}
	}
	slices.Sort(failed)
	byName := map[string]conformance.FeatureResult{}
	for _, f := range features {
		byName[f.Feature] = f
	}
	return failed, byName
}

func TestControlPasses(t *testing.T) {
	failed, features := runRecorded(t, broken.BindingFaults{})
	if len(failed) > 0 {
		t.Errorf("control binding failed %v", failed)
	}
	for name, f := range features {
		if f.Status != conformance.StatusPass || !f.Claimed {
			t.Errorf("control binding: %s: %v", name, f)
		}
	}
}

func TestBrokenBindingsFail(t *testing.T) {
	tests := []struct {
		name       string
		faults     broken.BindingFaults
		feature    string
		wantFailed []string
	}{
		{"accepts-unknown-operations", broken.BindingFaults{AcceptUnknown: true}, bindingsuite.FeatureUnknownRefused, []string{"operations/unknown-refused"}},
		{"no-events", broken.BindingFaults{NoEvents: true}, bindingsuite.FeatureInput, []string{"input/read"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			failed, features := runRecorded(t, tc.faults)
			if !slices.Equal(failed, tc.wantFailed) {
				t.Errorf("failed cases:\n got %v\nwant %v", failed, tc.wantFailed)
			}
			if got := features[tc.feature]; got.Status != conformance.StatusFail {
				t.Errorf("verdict on %s = %+v, want a failure", tc.feature, got)
			}
		})
	}
}

// TestUnlistedOperation: an operation in Config that Operations() does not
// list fails operations/listed.
func TestUnlistedOperation(t *testing.T) {
	var r conformance.Runner
	r.Run(t.Context(), "bindings", func(ct conformance.T) {
		bindingsuite.Run(ct, func() bindings.Output { return broken.NewBinding(broken.BindingFaults{AcceptUnknown: true}) }, bindingsuite.Config{
			Operations: []bindingsuite.Operation{{Operation: "frobnicate"}},
		})
	})
	var failed []string
	for _, res := range r.Results() {
		if res.Status == conformance.StatusFail {
			failed = append(failed, res.Name)
		}
	}
	want := []string{"bindings", "bindings/operations", "bindings/operations/listed", "bindings/operations/unknown-refused"}
	if !slices.Equal(failed, want) {
		t.Errorf("failed %v, want %v", failed, want)
	}
}
