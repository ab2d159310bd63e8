package host_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	commonv1pb "github.com/dapr/dapr/pkg/proto/common/v1"
	internalv1pb "github.com/dapr/dapr/pkg/proto/internals/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wapr-dev/wapr/builtin/backendtest"
	"github.com/wapr-dev/wapr/host"
	"github.com/wapr-dev/wapr/host/internal/placement"
)

// interopPair is two actor sidecars, apps "app-one" and "app-two", hosting
// Counter on one placement server and one Redis, their tables settled; the
// second calls other sidecars on wire2. addr1 and addr2 are their sidecar
// ports, where a daprd would call them.
type interopPair struct {
	s1, s2       *sidecar
	app1, app2   *actorApp
	addr1, addr2 string
	cluster      *actorCluster
}

func startInteropPair(t *testing.T, wire2 string) *interopPair {
	t.Helper()
	r := backendtest.StartRedis(t)
	srv, err := placement.StartServer(t.Context(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Close(ctx)
	})
	p := &interopPair{cluster: &actorCluster{}}
	p.app1 = startActorApp(t, "app1", counterConfig, p.cluster)
	p.app2 = startActorApp(t, "app2", counterConfig, p.cluster)
	yaml := map[string]string{"state.yaml": actorStoreYAML(r.Addr)}
	ln1, ln2 := listen(t), listen(t)
	p.addr1, p.addr2 = ln1.Addr().String(), ln2.Addr().String()
	p.s1 = startSidecarWith(t, hostConfig{appID: "app-one", appPort: p.app1.port, yaml: yaml, placement: srv.Addr(), internal: ln1}, nil)
	p.s2 = startSidecarWith(t, hostConfig{appID: "app-two", appPort: p.app2.port, yaml: yaml, placement: srv.Addr(), internal: ln2,
		sidecarWire: wire2, config: staticConfig(map[string][]string{"app-one": {p.addr1}})}, withStatic)

	// Until both sidecars' tables hold both hosts, some calls land on the
	// only host they know; wait until each sidecar sends a call to the
	// other's app (as startActorPair does).
	deadline := time.Now().Add(20 * time.Second)
	crossed := map[string]bool{}
	for i := 0; len(crossed) < 2; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("after 20s, calls crossed only %v", crossed)
		}
		id := fmt.Sprintf("warm-%d", i%50)
		for name, s := range map[string]*sidecar{"app2": p.s1, "app1": p.s2} {
			res, body := actorCall(t, s, "PUT", "/v1.0/actors/Counter/"+id+"/method/whoami", "")
			if res.StatusCode != 200 {
				t.Fatalf("warm-up: %d %s", res.StatusCode, body)
			}
			if string(body) == name {
				crossed[name] = true
			}
		}
	}
	p.app1.resetServed()
	p.app2.resetServed()
	return p
}

// owners returns n actor ids of each app, as placement puts them.
func (p *interopPair) owners(t *testing.T, prefix string, n int) (onApp1, onApp2 []string) {
	t.Helper()
	for i := 0; len(onApp1) < n || len(onApp2) < n; i++ {
		if i > 200 {
			t.Fatalf("placement put %d of 200 actors on app1", len(onApp1))
		}
		id := fmt.Sprintf("%s-%d", prefix, i)
		res, body := actorCall(t, p.s1, "PUT", "/v1.0/actors/Counter/"+id+"/method/whoami", "")
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d %s", id, res.StatusCode, body)
		}
		if string(body) == "app1" && len(onApp1) < n {
			onApp1 = append(onApp1, id)
		} else if string(body) == "app2" && len(onApp2) < n {
			onApp2 = append(onApp2, id)
		}
	}
	p.app1.resetServed()
	p.app2.resetServed()
	return onApp1, onApp2
}

// internalsClient is what a daprd holds to call the sidecar at addr:
// Dapr's generated dapr.proto.internals.v1 client over plaintext HTTP/2.
func internalsClient(t *testing.T, addr string) internalv1pb.ServiceInvocationClient {
	t.Helper()
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return internalv1pb.NewServiceInvocationClient(cc)
}

// daprdActorCall builds an actor call as daprd's HTTP API builds one for
// PUT /v1.0/actors/Counter/{id}/method/{method} and its router forwards it
// to the owner's CallActor.
func daprdActorCall(id, method, body string) *internalv1pb.InternalInvokeRequest {
	h := http.Header{"Content-Type": {"application/json"}, "X-Custom": {"one", "two"}, "Dapr-Api-Call": {"true"}}
	return internalv1pb.NewInternalInvokeRequest(method).
		WithActor("Counter", id).
		WithHTTPExtension("PUT", "").
		WithData([]byte(body)).
		WithContentType("application/json").
		WithHTTPHeaders(h)
}

// TestInteropDaprdCallsActor: a daprd calls actors hosted behind wapr as
// it calls a daprd's, with CallActor on the sidecar port placement
// announces. The owner takes the call in the actor's turn; a sidecar that
// does not own the actor answers daprd's "remote actor moved", on which a
// daprd looks the actor up again.
func TestInteropDaprdCallsActor(t *testing.T) {
	p := startInteropPair(t, "")
	onApp1, onApp2 := p.owners(t, "d", 3)
	c1 := internalsClient(t, p.addr1)

	for _, id := range onApp1 {
		res, err := c1.CallActor(t.Context(), daprdActorCall(id, "echo", `{"n":1}`))
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if res.GetStatus().GetCode() != 200 || string(res.GetMessage().GetData().GetValue()) != `{"n":1}` ||
			res.GetMessage().GetContentType() != "application/json" ||
			strings.Join(res.GetHeaders()["X-Actor"].GetValues(), ",") != "app1/"+id ||
			strings.Join(res.GetHeaders()["X-Verb"].GetValues(), ",") != "PUT" {
			t.Errorf("%s: answer %v", id, res)
		}
	}
	for _, id := range onApp2 {
		_, err := c1.CallActor(t.Context(), daprdActorCall(id, "echo", "{}"))
		if st := status.Convert(err); st.Code() != codes.Internal || st.Message() != "error invoke actor method: remote actor moved" {
			t.Errorf("%s on the sidecar that does not own it: %v, want daprd's remote actor moved", id, err)
		}
	}
	if _, err := c1.CallActorReminder(t.Context(), &internalv1pb.Reminder{ActorType: "Counter", ActorId: onApp2[0], Name: "r"}); status.Convert(err).Message() != "remote actor moved" {
		t.Errorf("a reminder of %s on the sidecar that does not own it: %v", onApp2[0], err)
	}
	served, _ := p.app2.counts()
	if len(served) != 0 {
		t.Errorf("app2 served %v; a CallActor is never forwarded again", served)
	}

	// The app's failure comes back as the app's answer.
	res, err := c1.CallActor(t.Context(), daprdActorCall(onApp1[0], "fail", ""))
	if err != nil || res.GetStatus().GetCode() != http.StatusTeapot {
		t.Errorf("fail: %v %v", res, err)
	}

	// Turns: calls of one actor over CallActor and the HTTP API never
	// overlap; calls of two actors run at once.
	one := onApp1[1]
	p.app1.resetServed()
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if _, err := c1.CallActor(t.Context(), daprdActorCall(one, "wait", "")); err != nil {
				t.Errorf("wait over CallActor: %v", err)
			}
		})
		wg.Go(func() {
			if res, body := actorCall(t, p.s2, "PUT", "/v1.0/actors/Counter/"+one+"/method/wait", ""); res.StatusCode != 200 {
				t.Errorf("wait over HTTP: %d %s", res.StatusCode, body)
			}
		})
	}
	wg.Wait()
	if n := p.app1.overlapsOf(one); n != 0 {
		t.Errorf("%d calls of %s overlapped", n, one)
	}
	if served, _ := p.app1.counts(); served[one] != 6 {
		t.Errorf("%s served %d calls, want 6", one, served[one])
	}
	x, y := onApp1[0], onApp1[2]
	for _, pair := range [][2]string{{x, y}, {y, x}} {
		wg.Go(func() {
			res, err := c1.CallActor(t.Context(), daprdActorCall(pair[0], "meet", pair[1]))
			if err != nil || res.GetStatus().GetCode() != 200 {
				t.Errorf("%s meeting %s: %v %v", pair[0], pair[1], res, err)
			}
		})
	}
	wg.Wait()
	p.cluster.check(t)
}

// TestInteropDaprdInvokes: a daprd invokes the app behind wapr as it
// invokes a daprd's: CallLocalStream, the body in chunks after the request,
// with the caller's and callee's ids as metadata; and unary CallLocal, its
// fallback.
func TestInteropDaprdInvokes(t *testing.T) {
	app := startActorApp(t, "app1", counterConfig, nil)
	ln := listen(t)
	s := startSidecarWith(t, hostConfig{appID: "app-one", appPort: app.port, internal: ln}, nil)
	c := internalsClient(t, ln.Addr().String())
	req := internalv1pb.NewInternalInvokeRequest("actors/Counter/svc/method/echo").
		WithHTTPExtension("PUT", "q=1").
		WithContentType("text/plain").
		WithHTTPHeaders(http.Header{"Content-Type": {"text/plain"}, "X-Custom": {"v"}})
	for k, v := range map[string]string{"dapr-caller-app-id": "daprd-app", "dapr-caller-namespace": "default", "dapr-callee-app-id": "app-one"} {
		req.Metadata[k] = &internalv1pb.ListStringValue{Values: []string{v}}
	}

	stream, err := c.CallLocalStream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for i, chunk := range []*internalv1pb.InternalInvokeRequestStream{
		{Request: req, Payload: &commonv1pb.StreamPayload{Seq: 0, Data: []byte("hello, ")}},
		{Payload: &commonv1pb.StreamPayload{Seq: 1, Data: []byte("actor")}},
	} {
		if err := stream.Send(chunk); err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
	}
	stream.CloseSend()
	var code int32
	var body []byte
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if r := m.GetResponse(); r != nil {
			code = r.GetStatus().GetCode()
			if v := r.GetHeaders()["X-Verb"].GetValues(); len(v) != 1 || v[0] != "PUT" {
				t.Errorf("the app saw verb %v, want PUT", v)
			}
		}
		body = append(body, m.GetPayload().GetData()...)
	}
	if code != 200 || string(body) != "hello, actor" {
		t.Errorf("CallLocalStream: %d %q", code, body)
	}

	req.Message.Data = nil
	req.WithData([]byte("unary"))
	res, err := c.CallLocal(t.Context(), req)
	if err != nil || res.GetStatus().GetCode() != 200 || string(res.GetMessage().GetData().GetValue()) != "unary" {
		t.Errorf("CallLocal: %v %v", res, err)
	}
	// The app's 404 is an answer, as any status.
	req.Message.Method = "nothing"
	if res, err := c.CallLocal(t.Context(), req); err != nil || res.GetStatus().GetCode() != 404 {
		t.Errorf("CallLocal of a missing method: %v %v", res, err)
	}
	// The sidecar still serves wapr's own wire on the same port.
	if r, body := send(t, "GET", s.base+"/v1.0/healthz", nil, nil); r.StatusCode != 204 {
		t.Errorf("healthz: %d %s", r.StatusCode, body)
	}
}

// TestInteropDaprWire: a wapr calling the others as a daprd does
// (--sidecar-wire dapr: CallActor and CallLocal of dapr.proto.internals.v1)
// reaches actors and apps behind a wapr on the default wire, on the same
// port that wire's calls take; the default wire's calls still go the other
// way. Every actor stays on one app.
func TestInteropDaprWire(t *testing.T) {
	p := startInteropPair(t, host.SidecarWireDapr)
	onApp1, onApp2 := p.owners(t, "w", 5)
	for _, tc := range []struct {
		via  *sidecar
		ids  []string
		want string
	}{{p.s2, onApp1, "app1"}, {p.s1, onApp2, "app2"}, {p.s2, onApp2, "app2"}} {
		for _, id := range tc.ids {
			res, body := actorCall(t, tc.via, "POST", "/v1.0/actors/Counter/"+id+"/method/echo?x=1", `{"id":"`+id+`"}`)
			if res.StatusCode != 200 || string(body) != `{"id":"`+id+`"}` || res.Header.Get("X-Actor") != tc.want+"/"+id ||
				res.Header.Get("Content-Type") != "application/json" {
				t.Errorf("%s: %d %s %v, want it echoed by %s", id, res.StatusCode, body, res.Header, tc.want)
			}
		}
	}
	served1, _ := p.app1.counts()
	served2, _ := p.app2.counts()
	for _, id := range onApp1 {
		if served1[id] != 1 || served2[id] != 0 {
			t.Errorf("%s: served %d times by app1, %d by app2; want once by app1", id, served1[id], served2[id])
		}
	}

	// Service invocation from the dapr-wire sidecar to app-one.
	h := http.Header{"Content-Type": {"text/plain"}}
	res, body := send(t, "PUT", p.s2.base+"/v1.0/invoke/app-one/method/actors/Counter/svc/method/echo", []byte("invoked"), h)
	if res.StatusCode != 200 || string(body) != "invoked" || res.Header.Get("X-Actor") != "app1/svc" {
		t.Errorf("invoke over CallLocal: %d %s %v", res.StatusCode, body, res.Header)
	}
	p.cluster.check(t)
}

// TestInteropDaprdForwardsReminder: a daprd whose scheduler stream
// triggered a reminder of an actor placement gives a wapr forwards it with
// CallActorReminder; the wapr calls the actor's remind method in its turn,
// with the data as daprd's app would get it. A sidecar that does not own
// the actor answers "remote actor moved".
func TestInteropDaprdForwardsReminder(t *testing.T) {
	srv, err := placement.StartServer(t.Context(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Close(ctx)
	})
	app := startReminderApp(t, "app1")
	ln := listen(t)
	startSidecarWith(t, hostConfig{appID: "app-one", appPort: app.port, yaml: memoryActors, placement: srv.Addr(), internal: ln}, nil)
	c := internalsClient(t, ln.Addr().String())
	data, err := anypb.New(wrapperspb.Bytes([]byte(`{"n":1}`)))
	if err != nil {
		t.Fatal(err)
	}
	// As daprd's router sends it (pkg/actors/router callRemoteActorReminder).
	in := &internalv1pb.Reminder{ActorType: "Counter", ActorId: "r1", Name: "daily", Data: data,
		Period: "@every 24h", RegisteredTime: timestamppb.Now(), ExpirationTime: timestamppb.New(time.Time{})}
	// Placement's first table may still be on its way: the reminder is
	// "moved" until then, and daprd tries again, as here.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := c.CallActorReminder(t.Context(), in)
		if err == nil {
			break
		}
		if status.Convert(err).Message() != "remote actor moved" || time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
	fires := app.firesOf("r1", "daily")
	if len(fires) != 1 {
		t.Fatalf("fires %v, want one", fires)
	}
	if b, _ := json.Marshal(fires[0].body); string(b) != `{"data":{"n":1},"dueTime":"","period":"@every 24h"}` || fires[0].contentType != "application/json" {
		t.Errorf("the app got %s (%s)", b, fires[0].contentType)
	}
	in.IsTimer = true
	if _, err := c.CallActorReminder(t.Context(), in); status.Code(err) != codes.Internal {
		t.Errorf("a forwarded timer: %v, want Internal", err)
	}
}

// TestInteropDaprdReentrancy: a daprd's call carrying a reentrancy id (as
// metadata, where daprd keeps the caller's headers) starts a chain the
// app's own calls back through its sidecar join, up to maxStackDepth, as a
// call forwarded by a wapr. Without the id reaching the app, the nested
// call would wait for the turn its own chain holds until the deadline.
func TestInteropDaprdReentrancy(t *testing.T) {
	app := startActorApp(t, "app", `{"entities":["Counter"],"reentrancy":{"enabled":true,"maxStackDepth":3}}`, nil)
	ln := listen(t)
	s := startSidecarWith(t, hostConfig{appID: "actorapp", appPort: app.port, yaml: memoryActors, internal: ln}, nil)
	app.sidecar = s.base
	c := internalsClient(t, ln.Addr().String())
	call := func(depth string) (*internalv1pb.InternalInvokeResponse, error) {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		req := daprdActorCall("r", "nest", depth)
		req.Metadata["Dapr-Reentrancy-Id"] = &internalv1pb.ListStringValue{Values: []string{"daprd-chain"}}
		// The embedded placement's first table may not be out yet.
		for {
			res, err := c.CallActor(ctx, req)
			if status.Convert(err).Message() != "error invoke actor method: remote actor moved" {
				return res, err
			}
		}
	}
	res, err := call("2")
	if err != nil || res.GetStatus().GetCode() != 200 || string(res.GetMessage().GetData().GetValue()) != "daprd-chain" {
		t.Fatalf("three calls deep: %v %v", res, err)
	}
	res, err = call("3")
	if err != nil || res.GetStatus().GetCode() != 500 || !strings.Contains(string(res.GetMessage().GetData().GetValue()), "ERR_ACTOR_STACK_DEPTH") {
		t.Fatalf("four calls deep: %v %v", res, err)
	}
}
