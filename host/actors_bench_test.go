package host_test

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkActorInvoke: actor method calls through one sidecar (embedded
// placement, in-memory actor state store) to a local HTTP actor app, 64
// callers at once, each call on another actor (distinct) or all on 8 actors,
// whose turns they then wait for (contended). go test ./host -run '^$'
// -bench ActorInvoke -cpu 64 for c=64.
func BenchmarkActorInvoke(b *testing.B) {
	for _, bc := range []struct {
		name   string
		actors int64
	}{{"distinct", 1 << 30}, {"contended-8", 8}} {
		b.Run(bc.name, func(b *testing.B) {
			app := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/dapr/config" {
					io.WriteString(w, `{"entities":["Counter"]}`)
					return
				}
				io.Copy(io.Discard, r.Body)
				io.WriteString(w, `{"ok":true}`)
			})}
			ln := listen(b)
			go app.Serve(ln)
			b.Cleanup(func() { app.Close() })
			appPort := ln.Addr().(*net.TCPAddr).Port
			s := startSidecarWith(b, hostConfig{appID: "actorapp", appPort: appPort, yaml: memoryActors, logger: slog.New(slog.DiscardHandler)}, nil)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 30 * time.Second}
			var next atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					id := next.Add(1) % bc.actors
					res, err := client.Post(fmt.Sprintf("%s/v1.0/actors/Counter/%d/method/m", s.base, id), "application/json", strings.NewReader(`{"n":1}`))
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != 200 {
						b.Errorf("status %d", res.StatusCode)
						return
					}
				}
			})
		})
	}
}
