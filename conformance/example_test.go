package conformance_test

import (
	"context"
	"fmt"

	"github.com/wapr-dev/wapr/builtin/pubsub/memory"
	"github.com/wapr-dev/wapr/conformance"
	pubsubsuite "github.com/wapr-dev/wapr/conformance/pubsub"
	"github.com/wapr-dev/wapr/host/component/pubsub"
)

// A program such as `wapr conformance` runs a suite with a Runner and
// reports every case and the verdict on every feature.
func ExampleRunner() {
	var r conformance.Runner
	var features []conformance.FeatureResult
	r.Run(context.Background(), "pubsub", func(t conformance.T) {
		features = pubsubsuite.Run(t, func() pubsub.PubSub { return memory.New() }, pubsubsuite.Config{
			Type: "pubsub.in-memory",
		})
	})
	count := map[conformance.Status]int{}
	for _, res := range r.Results() {
		count[res.Status]++
		if res.Status == conformance.StatusFail {
			fmt.Printf("FAIL %s: %s\n", res.Name, res.Reason)
		}
	}
	fmt.Printf("%d passed, %d failed, %d skipped\n", count[conformance.StatusPass], count[conformance.StatusFail], count[conformance.StatusSkip])
	for _, f := range features {
		fmt.Println(f)
	}
	// Output:
	// 19 passed, 0 failed, 3 skipped
	// at-least-once claimed: pass
	// BULK_PUBSUB claimed: pass
	// durable not claimed: skip (Config.Durable is false: the broker keeps no messages for a consumer group without subscribers)
	// fan-out-across-instances not claimed: skip (Config.FanOutAcrossInstances is false: instances do not share a broker)
	// ordered-per-key not claimed: skip (Config.OrderedPerKey is false)
}
