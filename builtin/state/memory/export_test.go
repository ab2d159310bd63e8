package memory

import "time"

// SetClock replaces s's clock. Call it before Init and before any other use.
func SetClock(s *Store, now func() time.Time) { s.now = now }

// Sweep runs one pass of the sweeper.
func Sweep(s *Store) { s.sweep() }

// Stored counts the entries held in memory, expired or not.
func Stored(s *Store) int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		n += len(sh.items)
		sh.mu.RUnlock()
	}
	return n
}
