package host_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestWasmStateConcurrency drives the Wasm state.redis with 64 parallel
// clients for 10 s (2 s with -short): every request must succeed, every
// read must return what that client last wrote, and concurrent ETag
// updates of one shared counter must lose no increment.
func TestWasmStateConcurrency(t *testing.T) {
	duration := 10 * time.Second
	if testing.Short() {
		duration = 2 * time.Second
	}
	yaml, files := redisBackend(true)(t)
	s := startSidecar(t, hostConfig{yaml: map[string]string{"backend.yaml": yaml}, files: files})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128}}
	call := func(method, path, body string, header map[string]string) (int, string, string, error) {
		req, _ := http.NewRequest(method, s.base+path, strings.NewReader(body))
		for k, v := range header {
			req.Header.Set(k, v)
		}
		res, err := client.Do(req)
		if err != nil {
			return 0, "", "", err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		return res.StatusCode, string(b), res.Header.Get("ETag"), err
	}
	if code, body, _, err := call("POST", "/v1.0/state/statestore", `[{"key":"counter","value":0}]`, nil); err != nil || code != 204 {
		t.Fatalf("seed: %d %s %v", code, body, err)
	}
	var requests, increments atomic.Int64
	deadline := time.Now().Add(duration)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for c := 0; c < 64; c++ {
		wg.Go(func() {
			key := fmt.Sprintf("client-%d", c)
			for n := 0; time.Now().Before(deadline); n++ {
				val := fmt.Sprintf(`{"client":%d,"n":%d}`, c, n)
				if code, body, _, err := call("POST", "/v1.0/state/statestore", `[{"key":"`+key+`","value":`+val+`}]`, nil); err != nil || code != 204 {
					errs <- fmt.Errorf("save %s: %d %s %v", key, code, body, err)
					return
				}
				code, body, _, err := call("GET", "/v1.0/state/statestore/"+key, "", nil)
				if err != nil || code != 200 || body != val {
					errs <- fmt.Errorf("get %s: %d %q (want %q) %v", key, code, body, val, err)
					return
				}
				requests.Add(2)
				if n%4 != 0 {
					continue
				}
				// Increment the shared counter with optimistic concurrency.
				for {
					code, body, etag, err := call("GET", "/v1.0/state/statestore/counter", "", nil)
					if err != nil || code != 200 {
						errs <- fmt.Errorf("get counter: %d %s %v", code, body, err)
						return
					}
					var v int
					json.Unmarshal([]byte(body), &v)
					code, body, _, err = call("POST", "/v1.0/state/statestore", fmt.Sprintf(`[{"key":"counter","value":%d,"etag":%q}]`, v+1, etag), nil)
					requests.Add(2)
					if err != nil || (code != 204 && code != 409) {
						errs <- fmt.Errorf("increment: %d %s %v", code, body, err)
						return
					}
					if code == 204 {
						increments.Add(1)
						break
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	_, body, _, err := call("GET", "/v1.0/state/statestore/counter", "", nil)
	if err != nil || body != fmt.Sprint(increments.Load()) {
		t.Errorf("counter = %s after %d successful increments (%v)", body, increments.Load(), err)
	}
	t.Logf("%d requests in %s (%.0f/s), %d increments", requests.Load(), duration, float64(requests.Load())/duration.Seconds(), increments.Load())
}
