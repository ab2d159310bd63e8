package compat_test

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestHTTPErrorsWithApp covers the answers that need an app behind the
// sidecar.
func TestHTTPErrorsWithApp(t *testing.T) {
	port := startApp(t, `[]`, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	s := start(t, options{appPort: port, resources: map[string]string{
		"c.yaml": componentYAML("brokenconfig", "configuration.compat-broken"),
	}})
	s.check(t, []call{
		{name: "configuration subscribe fails", method: "GET", path: "/v1.0/configuration/brokenconfig/subscribe?key=a", status: 500, code: "ERR_CONFIGURATION_SUBSCRIBE", message: "failed to subscribe [a] from Configuration store brokenconfig: …"},
		{name: "healthz", method: "GET", path: "/v1.0/healthz", status: 204},
	})
}

// TestHealthBeforeTheApp: with an app port that does not accept
// connections yet, /v1.0/healthz answers 500 ERR_HEALTH_NOT_READY while
// /v1.0/healthz/outbound answers 204 (docs/building-blocks/metadata-health.md;
// daprd's message is "dapr is not ready: <reason>").
func TestHealthBeforeTheApp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := start(t, options{appPort: port, noWait: true})
	deadline := time.Now().Add(10 * time.Second)
	for s.do(t, "GET", "/v1.0/healthz/outbound", "", nil).status != 204 {
		if time.Now().After(deadline) {
			t.Fatal("outbound health not 204 after 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.check(t, []call{
		{name: "healthz", method: "GET", path: "/v1.0/healthz", status: 500, code: "ERR_HEALTH_NOT_READY", message: "dapr is not ready…"},
		{name: "healthz outbound", method: "GET", path: "/v1.0/healthz/outbound", status: 204},
		{name: "healthz of another app id", method: "GET", path: "/v1.0/healthz?appid=other", status: 500, code: "ERR_HEALTH_APPID_NOT_MATCH", message: "dapr app-id does not match"},
	})
}

// TestHealthDuringShutdown: once shutdown begins, both health routes answer
// 500 for as long as the API answers; a delivery the app has not answered
// yet keeps the API up long enough to see it.
func TestHealthDuringShutdown(t *testing.T) {
	received, release := make(chan struct{}, 1), make(chan struct{})
	port := startApp(t, `[{"pubsubname":"pubsub","topic":"hold","route":"/hold"}]`, func(w http.ResponseWriter, r *http.Request) {
		received <- struct{}{}
		<-release
		w.WriteHeader(200)
	})
	s := start(t, options{appPort: port})
	if res := s.do(t, "POST", "/v1.0/publish/pubsub/hold", `{"a":1}`, jsonHeader); res.status != 204 {
		t.Fatalf("publish: %d %s", res.status, res.body)
	}
	select {
	case <-received:
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery")
	}
	s.stopped = true
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		done <- s.h.Shutdown(ctx)
	}()
	defer func() {
		close(release)
		if err := <-done; err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for s.do(t, "GET", "/v1.0/healthz/outbound", "", nil).status != 500 {
		if time.Now().After(deadline) {
			t.Fatal("outbound health not 500 10s after shutdown began")
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.check(t, []call{
		{name: "healthz outbound", method: "GET", path: "/v1.0/healthz/outbound", status: 500, code: "ERR_OUTBOUND_HEALTH_NOT_READY", message: "dapr outbound is not ready"},
		{name: "healthz", method: "GET", path: "/v1.0/healthz", status: 500, code: "ERR_HEALTH_NOT_READY", message: "dapr is not ready…"},
	})
}
