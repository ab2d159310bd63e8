package sidecarwire_test

import (
	"context"
	"log/slog"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/host/internal/api"
	"github.com/wapr-dev/wapr/host/internal/httpapi"
)

// fixedApp answers every call at once with 200 and a copy of the body, as a
// fast app would.
type fixedApp struct{}

func (fixedApp) Call(_ context.Context, req *api.AppRequest) (*api.AppResponse, error) {
	return &api.AppResponse{Status: 200,
		Header: []api.Header{{Key: "Content-Type", Value: "application/octet-stream"}},
		Body:   append([]byte(nil), req.Body...)}, nil
}

// BenchmarkWire measures a call between two sidecars on each wire,
// the app answering in-process: the calling end's client and the called
// end's server, on loopback, 64 callers at once, 1 KiB bodies and the
// headers an SDK sends. Compare the wires with benchstat:
//
//	go test -run '^$' -bench BenchmarkWire -benchmem -count 6 ./host/internal/sidecarwire/
func BenchmarkWire(b *testing.B) {
	benchWires := append([]wire{{"http",
		func(a *api.API, maxBody int, log *slog.Logger) server {
			return httpapi.New(httpapi.Options{API: a, MaxRequestBodySize: maxBody, Sidecar: true, Logger: log})
		},
		func() client { return httpapi.NewSidecarClient() }}}, wires...)
	body := allBytes(1024)
	headers := []api.Header{
		{Key: "Content-Type", Value: "application/octet-stream"},
		{Key: "User-Agent", Value: "dapr-sdk-go/v1.11.0"},
		{Key: "Traceparent", Value: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		{Key: "Accept", Value: "*/*"},
	}
	for _, w := range benchWires {
		b.Run(w.name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			a := api.New("callee", api.RuntimeInfo{})
			a.SetAppChannel(fixedApp{})
			srv := w.newServer(a, 0, slog.New(slog.DiscardHandler))
			go srv.Serve(ln)
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				srv.Shutdown(ctx)
			}()
			c := w.newClient()
			defer c.Close()
			addr := ln.Addr().String()
			call := func() error {
				res, err := c.Call(b.Context(), addr, &api.InvokeRequest{AppID: "callee", CallerAppID: "caller",
					Verb: "POST", Method: "echo", Headers: headers, Body: body})
				if err != nil {
					return err
				}
				if res.Status != 200 || len(res.Body) != len(body) {
					b.Errorf("status %d, %d body bytes", res.Status, len(res.Body))
				}
				res.Release() // as the HTTP API does once the body is in its response
				return nil
			}
			if err := call(); err != nil { // connect before the clock starts
				b.Fatal(err)
			}
			b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := call(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
