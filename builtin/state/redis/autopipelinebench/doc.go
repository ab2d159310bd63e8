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
// The package holds no code outside its benchmark.
package autopipelinebench
