package main

import (
	"context"
	"fmt"
	"io"
	"time"

	commonv1pb "github.com/dapr/dapr/pkg/proto/common/v1"
	runtimev1pb "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/emptypb"
)

// The gRPC state scenarios (grpc-get, grpc-save) do what get and save do,
// over Dapr's gRPC API at --sidecar-grpc: the same store, value size and
// number of clients, one key per client. --grpc-client picks the client:
// raw (default), rawConn in grpcraw.go, a minimal HTTP/2 client about as
// cheap per call as the HTTP scenarios' client, so that the load
// generator's share of the two cores does not swamp the sidecar's; or
// grpc-go, the generated runtimev1pb.DaprClient on grpc-go's transport,
// what an app using an SDK pays (without the SDK's own overhead). The
// clients share --grpc-conns connections (client w uses connection w mod
// n): one HTTP/2 connection multiplexes every call, as one SDK client in an
// app does.

// stateRPC makes grpc-get's and grpc-save's calls on one connection. get
// may unmarshal into into, which its caller owns, and returns the reply.
type stateRPC interface {
	get(ctx context.Context, req *runtimev1pb.GetStateRequest, into *runtimev1pb.GetStateResponse) (*runtimev1pb.GetStateResponse, error)
	save(ctx context.Context, req *runtimev1pb.SaveStateRequest, into *emptypb.Empty) error
}

// grpcGoRPC calls through grpc-go's generated client, which allocates its
// replies itself.
type grpcGoRPC struct{ c runtimev1pb.DaprClient }

func (g grpcGoRPC) get(ctx context.Context, req *runtimev1pb.GetStateRequest, _ *runtimev1pb.GetStateResponse) (*runtimev1pb.GetStateResponse, error) {
	return g.c.GetState(ctx, req)
}

func (g grpcGoRPC) save(ctx context.Context, req *runtimev1pb.SaveStateRequest, _ *emptypb.Empty) error {
	_, err := g.c.SaveState(ctx, req)
	return err
}

// rawRPC calls through rawConn, unmarshalling into the caller's replies.
type rawRPC struct{ c *rawConn }

func (r rawRPC) get(ctx context.Context, req *runtimev1pb.GetStateRequest, into *runtimev1pb.GetStateResponse) (*runtimev1pb.GetStateResponse, error) {
	return into, r.c.Invoke(ctx, runtimev1pb.Dapr_GetState_FullMethodName, req, into)
}

func (r rawRPC) save(ctx context.Context, req *runtimev1pb.SaveStateRequest, into *emptypb.Empty) error {
	return r.c.Invoke(ctx, runtimev1pb.Dapr_SaveState_FullMethodName, req, into)
}

// grpcClients connects n clients of kind ("raw" or "grpc-go") to addr;
// close releases them.
func grpcClients(ctx context.Context, kind, addr string, n int) (clients []stateRPC, close func(), err error) {
	var closers []io.Closer
	close = func() {
		for _, c := range closers {
			c.Close()
		}
	}
	for range max(n, 1) {
		var c stateRPC
		if kind == "raw" {
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			var rc *rawConn
			rc, err = dialRaw(dctx, addr)
			cancel()
			if err == nil {
				closers, c = append(closers, rc), rawRPC{rc}
			}
		} else {
			var cc *grpc.ClientConn
			cc, err = grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err == nil {
				closers, c = append(closers, cc), grpcGoRPC{runtimev1pb.NewDaprClient(cc)}
			}
		}
		if err != nil {
			close()
			return nil, nil, err
		}
		clients = append(clients, c)
	}
	return clients, close, nil
}

// grpcState runs grpc-get (save false) or grpc-save on store.
func (b *bench) grpcState(ctx context.Context, name, store string, save bool) result {
	clients, closeConns, err := grpcClients(ctx, b.c.grpcClient, b.c.sidecarGRPC, b.c.grpcConns)
	if err != nil {
		return result{Name: name, Extra: b.c.grpcClient + " gRPC client: " + err.Error()}
	}
	defer closeConns()
	keys := b.keys("grpc")
	value := []byte(b.value)
	saves := make([]*runtimev1pb.SaveStateRequest, len(keys))
	gets := make([]*runtimev1pb.GetStateRequest, len(keys))
	// Each client's replies, for a client that unmarshals into them.
	saved := make([]*emptypb.Empty, len(keys))
	got := make([]*runtimev1pb.GetStateResponse, len(keys))
	for i, k := range keys {
		saves[i] = &runtimev1pb.SaveStateRequest{StoreName: store, States: []*commonv1pb.StateItem{{Key: k, Value: value}}}
		gets[i] = &runtimev1pb.GetStateRequest{StoreName: store, Key: k}
		saved[i], got[i] = new(emptypb.Empty), new(runtimev1pb.GetStateResponse)
		// Seeding also connects every connection before the clock starts.
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := clients[i%len(clients)].save(sctx, saves[i], saved[i])
		cancel()
		if err != nil {
			return result{Name: name, Extra: fmt.Sprintf("seeding over gRPC at %s failed: %v", b.c.sidecarGRPC, err)}
		}
	}
	// Calls still waiting 30 s after the end fail, as with the HTTP
	// client's timeouts. Not a deadline: gRPC would send it with every
	// call, and the sidecar would arm a timer for each.
	ctx, cancel := context.WithCancel(ctx)
	defer time.AfterFunc(b.c.duration+30*time.Second, cancel).Stop()
	defer cancel()
	var firstErr errOnce
	r := b.driveCPU(name, func(w, _ int) error {
		c := clients[w%len(clients)]
		var err error
		if save {
			err = c.save(ctx, saves[w], saved[w])
		} else {
			var res *runtimev1pb.GetStateResponse
			if res, err = c.get(ctx, gets[w], got[w]); err == nil && len(res.GetData()) != len(value) {
				err = fmt.Errorf("get %s: %d bytes, want %d", keys[w], len(res.GetData()), len(value))
			}
		}
		if err != nil {
			firstErr.set(err)
		}
		return err
	})
	r.Extra = fmt.Sprintf("%s client, %d gRPC connection(s); %s", b.c.grpcClient, len(clients), r.Extra)
	if err := firstErr.get(); err != nil {
		r.Extra += "; first error: " + err.Error()
	}
	return r
}

// driveCPU is drive, with the CPU time each call cost this process and,
// with --sidecar-pid, the sidecar's process, in Extra: the load
// generator's share tells a client's cost from the sidecar's. With
// --embedded, this process is the sidecar too.
func (b *bench) driveCPU(name string, op func(w, n int) error) result {
	cpu := func() []time.Duration {
		t := cpuTimes(nil)
		if t != nil && b.c.sidecarPID > 0 {
			d, err := processCPU(b.c.sidecarPID)
			if err != nil {
				return nil
			}
			t = append(t, d)
		}
		return t
	}
	before := cpu()
	r := drive(name, b.c, op)
	after := cpu()
	if r.Ops == 0 || before == nil || after == nil {
		return r
	}
	per := func(i int) string {
		return ((after[i] - before[i]) / time.Duration(r.Ops)).Round(100 * time.Nanosecond).String()
	}
	self := "wapr-bench"
	if b.c.embedded {
		self += " (load and sidecar)"
	}
	r.Extra = "CPU per call: " + self + " " + per(0)
	if len(before) > 1 {
		r.Extra += ", sidecar " + per(1)
	}
	return r
}
