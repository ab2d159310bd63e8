package h2grpc

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/interop"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
)

// startServer serves the gRPC interop suite's TestService (grpc-go's own
// implementation of it) on a Server with o on a loopback port, and returns
// a grpc-go client connection to it. Both stop with the test.
func startServer(t testing.TB, o Options, register ...func(*Server)) (*Server, *grpc.ClientConn) {
	t.Helper()
	s := New(o)
	testgrpc.RegisterTestServiceServer(s, interop.NewTestServer())
	for _, r := range register {
		r(s)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return s, cc
}

// TestInterop runs the gRPC interoperability test cases that need no
// credentials or load balancing, with grpc-go's client against this
// server: unary calls small and large, the three kinds of streaming,
// deadlines, cancellation, metadata both ways, status codes and messages
// (with characters that must be percent-encoded), and unknown services and
// methods. A case that fails ends the test binary (the suite calls
// grpclog's Fatal), naming what it expected.
func TestInterop(t *testing.T) {
	_, cc := startServer(t, Options{})
	tc := testgrpc.NewTestServiceClient(cc)
	ctx := t.Context()
	for _, tt := range []struct {
		name string
		run  func()
	}{
		{"empty_unary", func() { interop.DoEmptyUnaryCall(ctx, tc) }},
		{"large_unary", func() { interop.DoLargeUnaryCall(ctx, tc) }},
		{"client_streaming", func() { interop.DoClientStreaming(ctx, tc) }},
		{"server_streaming", func() { interop.DoServerStreaming(ctx, tc) }},
		{"ping_pong", func() { interop.DoPingPong(ctx, tc) }},
		{"empty_stream", func() { interop.DoEmptyStream(ctx, tc) }},
		{"timeout_on_sleeping_server", func() { interop.DoTimeoutOnSleepingServer(ctx, tc) }},
		{"cancel_after_begin", func() { interop.DoCancelAfterBegin(ctx, tc) }},
		{"cancel_after_first_response", func() { interop.DoCancelAfterFirstResponse(ctx, tc) }},
		{"custom_metadata", func() { interop.DoCustomMetadata(ctx, tc) }},
		{"status_code_and_message", func() { interop.DoStatusCodeAndMessage(ctx, tc) }},
		{"special_status_message", func() { interop.DoSpecialStatusMessage(ctx, tc) }},
		{"unimplemented_service", func() { interop.DoUnimplementedService(ctx, testgrpc.NewUnimplementedServiceClient(cc)) }},
		{"unimplemented_method", func() { interop.DoUnimplementedMethod(ctx, cc) }},
	} {
		t.Run(tt.name, func(t *testing.T) { tt.run() })
	}
}

// BenchmarkUnary measures a small unary call through grpc-go's client and
// this server, 64 in flight on one connection.
func BenchmarkUnary(b *testing.B) {
	_, cc := startServer(b, Options{})
	tc := testgrpc.NewTestServiceClient(cc)
	req := &testgrpc.SimpleRequest{ResponseSize: 64}
	b.ReportAllocs()
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := tc.UnaryCall(context.Background(), req); err != nil {
				b.Fatal(err)
			}
		}
	})
}
