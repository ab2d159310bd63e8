package pubsub_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/builtin/pubsub/memory"
	"github.com/wapr-dev/wapr/conformance"
	"github.com/wapr-dev/wapr/conformance/internal/broken"
	pubsubsuite "github.com/wapr-dev/wapr/conformance/pubsub"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/pubsub"
)

// TestInMemory is how a component's own tests use the suite. The in-memory
// broker keeps nothing for absent subscribers and its instances share
// nothing, so durable and instances are skipped.
func TestInMemory(t *testing.T) {
	features := pubsubsuite.Run(t, func() pubsub.PubSub { return memory.New() }, pubsubsuite.Config{Type: "pubsub.in-memory"})
	for _, f := range features {
		t.Log(f)
		if f.Status == conformance.StatusFail {
			t.Errorf("in-memory broker: %v", f)
		}
	}
}

// TestInMemoryOrdered checks ordering too: with one delivery in flight per
// subscription the in-memory broker delivers in publish order.
func TestInMemoryOrdered(t *testing.T) {
	features := pubsubsuite.Run(t, func() pubsub.PubSub { return memory.New() }, pubsubsuite.Config{
		Type:              "pubsub.in-memory",
		SubscribeMetadata: map[string]string{"concurrency": "1"},
		OrderedPerKey:     true,
	})
	for _, f := range features {
		if f.Feature == pubsubsuite.FeatureOrderedPerKey && f.Status != conformance.StatusPass {
			t.Errorf("ordering: %v", f)
		}
	}
}

// runRecorded runs the suite under a conformance.Runner, as a CLI would, and
// returns the failed leaf cases and the verdicts by feature.
func runRecorded(t *testing.T, newPubSub func() pubsub.PubSub, cfg pubsubsuite.Config) ([]string, map[string]conformance.FeatureResult) {
	t.Helper()
	var r conformance.Runner
	var features []conformance.FeatureResult
	r.Run(t.Context(), "pubsub", func(ct conformance.T) { features = pubsubsuite.Run(ct, newPubSub, cfg) })
	var failed []string
	for _, res := range r.Results() {
		if strings.Count(res.Name, "/") == 2 && res.Status == conformance.StatusFail {
			failed = append(failed, strings.TrimPrefix(res.Name, "pubsub/"))
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

// claimsAll claims every behaviour the shared test broker has.
var claimsAll = pubsubsuite.Config{
	Durable:               true,
	FanOutAcrossInstances: true,
	OrderedPerKey:         true,
	MaxReadDuration:       2 * time.Second,
}

// TestControlPasses runs the test broker with no fault on: every case,
// instances and restarts included, must pass.
func TestControlPasses(t *testing.T) {
	t.Parallel()
	b := broken.NewBroker(broken.PubSubFaults{})
	failed, features := runRecorded(t, func() pubsub.PubSub { return b.New() }, claimsAll)
	if len(failed) > 0 {
		t.Errorf("control broker failed %v", failed)
	}
	for _, f := range features {
		if f.Status != conformance.StatusPass {
			t.Errorf("control broker: %v", f)
		}
	}
}

// TestBrokenBrokersFail proves the suite can fail.
func TestBrokenBrokersFail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		faults     broken.PubSubFaults
		feature    string
		wantFailed []string
	}{
		{"loses-messages-after-handler-error", broken.PubSubFaults{LoseAfterError: true}, pubsubsuite.FeatureAtLeastOnce, []string{"redelivery/after-handler-error"}},
		{"not-durable", broken.PubSubFaults{ForgetGroups: true}, pubsubsuite.FeatureDurable, []string{"durable/restart"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := broken.NewBroker(tc.faults)
			cfg := claimsAll
			cfg.MaxReadDuration = time.Second
			failed, features := runRecorded(t, func() pubsub.PubSub { return b.New() }, cfg)
			if !slices.Equal(failed, tc.wantFailed) {
				t.Errorf("failed cases:\n got %v\nwant %v", failed, tc.wantFailed)
			}
			if got := features[tc.feature]; got.Status != conformance.StatusFail {
				t.Errorf("verdict on %s = %+v, want a failure", tc.feature, got)
			}
		})
	}
}

// TestNilPubSub: a constructor returning nil fails the run cleanly.
func TestNilPubSub(t *testing.T) {
	var r conformance.Runner
	r.Run(t.Context(), "pubsub", func(ct conformance.T) {
		pubsubsuite.Run(ct, func() pubsub.PubSub { return nil }, pubsubsuite.Config{})
	})
	if !r.Failed() {
		t.Error("a nil broker passed")
	}
}

// TestDeleteTopics: Config.DeleteTopics gets every topic of the run, once,
// after the instances were closed, and its error fails the run.
func TestDeleteTopics(t *testing.T) {
	var (
		calls  int
		topics []string
	)
	var made []*memory.PubSub
	cfg := pubsubsuite.Config{
		Type: "pubsub.in-memory", MessageCount: 5,
		DeleteTopics: func(ctx context.Context, ts []string) error {
			calls++
			topics = ts
			for _, ps := range made {
				if err := ps.Publish(ctx, &pubsub.PublishRequest{Topic: "x", Data: []byte("{}")}); !errors.Is(err, component.ErrClosed) {
					t.Errorf("DeleteTopics ran while an instance was open (Publish: %v)", err)
				}
			}
			return errors.New("broker said no")
		},
	}
	var r conformance.Runner
	r.Run(t.Context(), "pubsub", func(ct conformance.T) {
		pubsubsuite.Run(ct, func() pubsub.PubSub { ps := memory.New(); made = append(made, ps); return ps }, cfg)
	})
	if calls != 1 {
		t.Fatalf("DeleteTopics called %d times, want once", calls)
	}
	if len(topics) < 5 || !slices.IsSorted(topics) {
		t.Errorf("topics %q: want every topic of the run, sorted", topics)
	}
	for _, topic := range topics {
		if !strings.HasPrefix(topic, pubsubsuite.DefaultTopicPrefix) {
			t.Errorf("topic %q does not start with the prefix", topic)
		}
	}
	res := r.Results()
	if top := res[0]; top.Name != "pubsub" || top.Status != conformance.StatusFail || !strings.Contains(top.Reason, "broker said no") {
		t.Errorf("top-level result %+v, want a failure naming the DeleteTopics error", top)
	}
}
