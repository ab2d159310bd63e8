package telemetry

import (
	"fmt"
	"io"
	"slices"
	"strconv"
)

// BatchBounds are the upper bounds of wapr_wasm_batch_size's buckets:
// requests per bulk call built from queued requests (at most 32).
var BatchBounds = [...]int{1, 2, 4, 8, 16, 32}

// WasmStats is what a Wasm component reports of itself. The Wasm adapter
// keeps it with atomic counters on its own paths (a call, a discard, a
// batch); the metrics read it only when scraped.
type WasmStats struct {
	// Closed is set once the component has been closed: it is no longer
	// reported.
	Closed bool
	// PoolSize is the bound of the instance pool; Instances are alive (or
	// being created), Busy of them serve a call.
	PoolSize, Instances, Busy int
	// Replaced counts instances discarded (broken, timed out, recycled
	// after their call budget or memory threshold); each frees a slot for
	// a new one.
	Replaced uint64
	// Traps counts calls that broke their instance (a trap, running out of
	// memory, a protocol violation); DeadlineStops counts calls stopped at
	// their deadline (by fuel metering or the engine's interruption).
	Traps, DeadlineStops uint64
	// FuelChecks counts the fuel-metering interrupts of the component's
	// metered guests: each is a host check of the call's deadline after a
	// guest used its allowance of fuel (function entries and loop
	// iterations).
	FuelChecks uint64
	// Batches counts bulk calls by size, one count per BatchBounds bucket
	// (not cumulative); BatchedRequests is the sum of their sizes.
	Batches         [len(BatchBounds)]uint64
	BatchedRequests uint64
}

// WasmSource returns a Wasm component's stats; it must be cheap and safe
// for concurrent use.
type WasmSource func() WasmStats

func (m *Metrics) addWasm(name string, src WasmSource) {
	m.wasmMu.Lock()
	m.wasm[name] = src
	m.wasmMu.Unlock()
}

// wasmMetric is one wapr_wasm_ family.
type wasmMetric struct {
	name, kind, help string
	value            func(WasmStats) uint64
}

var wasmMetrics = []wasmMetric{
	{"wapr_wasm_pool_size", "gauge", "Bound of the Wasm component's instance pool.", func(s WasmStats) uint64 { return uint64(s.PoolSize) }},
	{"wapr_wasm_pool_instances", "gauge", "Instances of the Wasm component alive or being created.", func(s WasmStats) uint64 { return uint64(s.Instances) }},
	{"wapr_wasm_pool_busy", "gauge", "Instances of the Wasm component serving a call.", func(s WasmStats) uint64 { return uint64(s.Busy) }},
	{"wapr_wasm_instances_replaced_total", "counter", "Instances discarded (broken, timed out or recycled), each replaced on demand.", func(s WasmStats) uint64 { return s.Replaced }},
	{"wapr_wasm_traps_total", "counter", "Calls that broke their instance: traps, out of memory, protocol violations.", func(s WasmStats) uint64 { return s.Traps }},
	{"wapr_wasm_deadline_stops_total", "counter", "Calls stopped at their deadline.", func(s WasmStats) uint64 { return s.DeadlineStops }},
	{"wapr_wasm_fuel_checks_total", "counter", "Fuel-metering interrupts: host checks of a metered guest's deadline.", func(s WasmStats) uint64 { return s.FuelChecks }},
}

// writeWasm writes the wapr_wasm_ families of the Wasm components served
// now; components closed since are forgotten.
func (m *Metrics) writeWasm(w io.Writer) {
	m.wasmMu.Lock()
	names := make([]string, 0, len(m.wasm))
	stats := map[string]WasmStats{}
	for name, src := range m.wasm {
		s := src()
		if s.Closed {
			delete(m.wasm, name)
			continue
		}
		names = append(names, name)
		stats[name] = s
	}
	m.wasmMu.Unlock()
	if len(names) == 0 {
		return
	}
	slices.Sort(names)
	labels := make(map[string]string, len(names))
	for _, n := range names {
		labels[n] = m.base + "," + label("component", n)
	}
	for _, wm := range wasmMetrics {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", wm.name, wm.help, wm.name, wm.kind)
		for _, n := range names {
			fmt.Fprintf(w, "%s{%s} %d\n", wm.name, labels[n], wm.value(stats[n]))
		}
	}
	const h = "wapr_wasm_batch_size"
	fmt.Fprintf(w, "# HELP %s Requests per bulk call a Wasm component built from queued requests (gets, sets, publishes).\n# TYPE %s histogram\n", h, h)
	for _, n := range names {
		s := stats[n]
		var cum, count uint64
		for i, b := range BatchBounds {
			cum += s.Batches[i]
			fmt.Fprintf(w, "%s_bucket{%s,le=\"%s\"} %d\n", h, labels[n], strconv.Itoa(b), cum)
		}
		count = cum
		fmt.Fprintf(w, "%s_bucket{%s,le=\"+Inf\"} %d\n%s_sum{%s} %d\n%s_count{%s} %d\n", h, labels[n], count, h, labels[n], s.BatchedRequests, h, labels[n], count)
	}
}
