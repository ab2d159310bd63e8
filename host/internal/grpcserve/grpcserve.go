// Package grpcserve holds what wapr's grpc-go servers (the sidecar wires,
// daprd's internal service; the Dapr API has its own transport, h2grpc)
// share: serving until a stop, and a graceful stop bounded by a context.
package grpcserve

import (
	"context"
	"errors"
	"net"

	"google.golang.org/grpc"
)

// Serve answers calls on ln until srv stops. It returns nil once srv was
// stopped, even when the stop came first: grpc then closes ln and answers
// ErrServerStopped, which is a stop (a host stopped as soon as it
// started), not a failure.
func Serve(srv *grpc.Server, ln net.Listener) error {
	if err := srv.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}

// Stop stops srv accepting connections and calls and waits, until ctx is
// done, for the calls in flight to finish (gRPC's GracefulStop); then it
// closes every connection, failing the calls still in flight, and returns
// ctx's error at once: a handler still running (an app call that ends by
// the app channel's timeout) is not waited for.
func Stop(ctx context.Context, srv *grpc.Server) error {
	done := make(chan struct{})
	go func() {
		srv.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		srv.Stop()
		return ctx.Err()
	}
}
