package backendtest

import "time"

// Eventually calls f until it succeeds or limit passes, pausing 20 ms
// between attempts, and returns f's last error: for conditions a test
// observes in a backend (a client gone, a key written) and cannot be told
// about.
func Eventually(limit time.Duration, f func() error) error {
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		<-tick.C
	}
}
