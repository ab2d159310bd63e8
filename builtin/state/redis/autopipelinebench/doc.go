// Package autopipelinebench compares Redis auto-pipeliners under the state
// store's Get and Set at 64 concurrent callers, in one run against one
// private redis-server (issue 14, item 6).
//
// It is a module of its own so that rueidis, which only this comparison
// uses, stays out of wapr's go.mod. Run it from this folder:
//
//	go test -run '^$' -bench . -timeout 1h | tee new.txt
//	go run golang.org/x/perf/cmd/benchstat@latest -ignore /round -col /engine new.txt
//
// Instead of -count, the benchmark runs ROUNDS rounds (default 6), each
// giving every engine its turn, so that a machine busy with other work
// slows all engines alike.
//
// # The comparison that chose go-redis
//
// At commit 5f7d76c (which had wapr's own auto-pipeliner,
// builtin/internal/redisbatch, behind a temporary autoPipelineEngine key),
// one run, 10 rounds, one redis-server, GOMAXPROCS 2 on a machine at load
// average about 20; medians, and go-redis's and rueidis's ratio to wapr's:
//
//	                       wapr      go-redis        rueidis
//	ops/s  Get background  189.1k    132.5k  (~)     54.3k  -71 %
//	       Get cancellable  87.9k    136.8k  (~)     72.9k  (~)
//	       Set background   78.4k     80.7k  (~)     66.9k  (~)
//	       Set cancellable  79.6k    115.9k  +46 %   77.8k  (~)
//	       geomean         100.9k    114.1k  +13 %   67.4k  -33 %
//	client CPU per op      3.96 µs   3.80 µs  -4 %   7.79 µs +97 % (geomeans)
//	allocs/op (Get/Set)    12/6-7    12/6-7          8/0
//	B/op geomean           592       564      -5 %   (Set: 0)
//
// "(~)": no significant difference (p > 0.05). Wall-clock spreads were
// ±30-140 % on the busy machine; CPU per op, ±7-36 %. An earlier run
// (6 rounds, seven engines) agreed: geomean ops/s, wapr 109.8k; wapr with
// one batch in flight +12 %; go-redis +15 %; go-redis with two unordered
// batches -20 %; its full-duplex mode -27 %; rueidis -31 %. wapr's did not
// win by the 10 % that would have kept it, so state.redis uses go-redis's
// AsyncAutoPipeline with its default options and redisbatch was deleted.
// wapr: MaxInFlight 2 (its default); go-redis: DefaultAutoPipelineOptions
// (one ordered batch at a time); rueidis v1.0.80: its defaults (DisableCache
// set; two pipelined connections at GOMAXPROCS 2). "cancellable" is a ctx
// that can end (gRPC's), "background" one that cannot (the HTTP API's).
//
// The package holds no code outside its benchmark.
package autopipelinebench
