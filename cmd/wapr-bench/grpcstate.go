package main

import (
	"context"
	"fmt"
	"time"

	commonv1pb "github.com/dapr/dapr/pkg/proto/common/v1"
	runtimev1pb "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// The gRPC state scenarios (grpc-get, grpc-save) do what get and save do,
// over Dapr's gRPC API at --sidecar-grpc: the same store, value size and
// number of clients, one key per client. They call the generated
// runtimev1pb.DaprClient directly, without an SDK's overhead. The clients
// share --grpc-conns connections (client w uses connection w mod n): one
// HTTP/2 connection multiplexes every call, as one SDK client in an app
// does.

// grpcClients dials n connections to addr; close releases them.
func grpcClients(addr string, n int) (clients []runtimev1pb.DaprClient, close func(), err error) {
	conns := make([]*grpc.ClientConn, 0, n)
	close = func() {
		for _, cc := range conns {
			cc.Close()
		}
	}
	for range max(n, 1) {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			close()
			return nil, nil, err
		}
		conns = append(conns, cc)
		clients = append(clients, runtimev1pb.NewDaprClient(cc))
	}
	return clients, close, nil
}

// grpcState runs grpc-get (save false) or grpc-save on store.
func (b *bench) grpcState(ctx context.Context, name, store string, save bool) result {
	clients, closeConns, err := grpcClients(b.c.sidecarGRPC, b.c.grpcConns)
	if err != nil {
		return result{Name: name, Extra: "gRPC client: " + err.Error()}
	}
	defer closeConns()
	keys := b.keys("grpc")
	value := []byte(b.value)
	saves := make([]*runtimev1pb.SaveStateRequest, len(keys))
	gets := make([]*runtimev1pb.GetStateRequest, len(keys))
	for i, k := range keys {
		saves[i] = &runtimev1pb.SaveStateRequest{StoreName: store, States: []*commonv1pb.StateItem{{Key: k, Value: value}}}
		gets[i] = &runtimev1pb.GetStateRequest{StoreName: store, Key: k}
		// Seeding also connects every connection before the clock starts.
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := clients[i%len(clients)].SaveState(sctx, saves[i])
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
			_, err = c.SaveState(ctx, saves[w])
		} else {
			var res *runtimev1pb.GetStateResponse
			if res, err = c.GetState(ctx, gets[w]); err == nil && len(res.GetData()) != len(value) {
				err = fmt.Errorf("get %s: %d bytes, want %d", keys[w], len(res.GetData()), len(value))
			}
		}
		if err != nil {
			firstErr.set(err)
		}
		return err
	})
	r.Extra = fmt.Sprintf("%d gRPC connection(s); %s", len(clients), r.Extra)
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
