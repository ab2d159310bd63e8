package api

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wapr-dev/wapr/host/component/nameresolution"
	"github.com/wapr-dev/wapr/host/internal/tracing"
)

// Header is one request or response header (or gRPC metadata pair). A name
// may repeat; order is kept.
type Header struct{ Key, Value string }

// InvokeRequest is a service invocation: a call from one app to another
// app's method, through the sidecars of both.
type InvokeRequest struct {
	// AppID is the target: "id", or "id.namespace".
	AppID string
	// Verb is the HTTP method.
	Verb string
	// Method is the method path as the caller wrote it, without the
	// leading slash and still URL-escaped; it reaches the app unchanged.
	Method string
	// Query is the raw query string, without '?'.
	Query string
	// Headers are the caller's headers. Invoke drops the hop-by-hop ones
	// and the caller's dapr-api-token before anything leaves the sidecar.
	Headers []Header
	Body    []byte
	// CallerAppID and CallerNamespace name the calling app; Invoke sets
	// them.
	CallerAppID, CallerNamespace string
}

// InvokeResponse is the target app's answer, status, headers and body as the
// app sent them (hop-by-hop headers dropped). The caller owns it.
type InvokeResponse struct {
	Status  int
	Headers []Header
	Body    []byte
	// Buffer, when not nil, is the pooled memory Body lives in (Headers
	// never do). A receiver that has copied Body, or sent it, calls
	// Release; one that keeps Body leaves Buffer alone.
	Buffer *Buffer
}

// Release gives back the Buffer Body lives in, if any; Body must not be
// used after, and is set to nil.
func (r *InvokeResponse) Release() {
	if r.Buffer != nil {
		r.Buffer.Release()
		r.Buffer, r.Body = nil, nil
	}
}

// KeepBody makes Body the receiver's to keep: a copy when it lives in a
// Buffer, which goes back to the pool. For receivers that hand Body on to
// what outlives them (a protobuf message marshalled later).
func (r *InvokeResponse) KeepBody() []byte {
	if r.Buffer != nil {
		body := append([]byte(nil), r.Body...)
		r.Release()
		r.Body = body
	}
	return r.Body
}

// SidecarChannel carries invocations from this sidecar to other sidecars.
// Implementations are safe for concurrent use.
type SidecarChannel interface {
	// Call sends req to the sidecar listening at addr ("host:port"), which
	// answers with its app's response (or its own error answer, which is a
	// response too). A sidecar that cannot be reached, or closed the
	// connection without answering, is an error wrapping
	// ErrSidecarUnreachable: another instance may be tried. The answer's
	// Body may live in a pooled Buffer: the receiver releases it, or calls
	// KeepBody to keep the body.
	Call(ctx context.Context, addr string, req *InvokeRequest) (*InvokeResponse, error)
}

var (
	// ErrSidecarUnreachable: no connection to the target sidecar could be
	// made, or the connection closed before the first byte of an answer
	// (a sidecar that shut down or died). Another instance may be tried.
	// In the second case a sidecar that died mid-call may have given the
	// request to its app already, so the app can see it twice, as with
	// daprd, which retries such calls too.
	ErrSidecarUnreachable = errors.New("sidecar unreachable")
	// ErrMisrouted: the sidecar reached serves another app id (a stale
	// name-resolution answer); the request was not given to any app.
	ErrMisrouted = errors.New("the sidecar reached serves another app")
)

// Invocation is what service invocation needs beyond the app channel; the
// host sets it once name resolution has started.
type Invocation struct {
	Resolver nameresolution.Resolver
	Sidecars SidecarChannel
	// Namespace is this sidecar's namespace (NAMESPACE), empty self-hosted.
	Namespace string
}

// SetInvocation makes inv the way invocations reach other apps.
func (a *API) SetInvocation(inv *Invocation) { a.invocation.Store(inv) }

// SetAppChannel sets the channel to this sidecar's own app (nil: no app).
func (a *API) SetAppChannel(app AppChannel) { a.app.Store(&appHolder{app}) }

type appHolder struct{ ch AppChannel }

func (a *API) appChannel() AppChannel {
	if h := a.app.Load(); h != nil {
		return h.ch
	}
	return nil
}

// Invoke calls a method of the app req.AppID names: this sidecar's own app
// directly, any other through that app's sidecar, found by name resolution.
// Instances of one app id take calls in turn; one that cannot be reached is
// skipped until it answers again, and a call it could not take goes to the
// next. Any response of the app, 4xx and 5xx included, is a response, not an
// error. The target app's resiliency policy, if any, applies around all of
// it (Snapshot.InvokePolicy).
func (a *API) Invoke(ctx context.Context, req *InvokeRequest) (*InvokeResponse, error) {
	policy := a.snapshot.Load().InvokePolicy
	if id, _ := splitAppID(req.AppID); policy == nil || id == "" {
		return a.invoke(ctx, req)
	}
	res, err := policy.Invoke(ctx, req.AppID, req.Method, func(ctx context.Context) (*InvokeResponse, error) {
		return a.invoke(ctx, req)
	})
	var apiErr *Error
	if err != nil && !errors.As(err, &apiErr) {
		// The policy's own failure: a timeout or an open circuit breaker.
		return nil, errorf(CodeDirectInvoke, err, "failed to invoke, id: %s, err: %v", req.AppID, err)
	}
	return res, err
}

// invoke is one attempt of Invoke.
func (a *API) invoke(ctx context.Context, req *InvokeRequest) (*InvokeResponse, error) {
	id, ns := splitAppID(req.AppID)
	if id == "" {
		return nil, errorf(CodeDirectInvokeNoAppID, nil, "failed getting app id either from the URL path or the header dapr-app-id")
	}
	req.Headers = forwardable(req.Headers)
	if a.tracer != nil {
		// The callee continues the trace from this call's span.
		if span := tracing.SpanFromContext(ctx); span != nil {
			req.Headers = withTraceHeaders(req.Headers, span)
		}
	}
	req.CallerAppID = a.appID
	inv := a.invocation.Load()
	if inv != nil {
		req.CallerNamespace = inv.Namespace
	}
	if id == a.appID && (ns == "" || inv == nil || ns == inv.Namespace) {
		res, err := a.callApp(ctx, req)
		if err != nil {
			return nil, errorf(CodeDirectInvoke, err, "failed to invoke, id: %s, err: %v", req.AppID, err)
		}
		return res, nil
	}
	if inv == nil || inv.Resolver == nil {
		return nil, errorf(CodeDirectInvoke, nil, "failed to invoke, id: %s, err: name resolution is not running on this sidecar", req.AppID)
	}
	addrs, err := inv.Resolver.Resolve(ctx, nameresolution.Request{ID: id, Namespace: ns})
	if err != nil {
		return nil, errorf(CodeDirectInvoke, err, "failed to invoke, id: %s, err: %v", req.AppID, err)
	}
	var errs []error
	for _, addr := range a.instances.order(req.AppID, addrs) {
		res, err := inv.Sidecars.Call(ctx, addr, req)
		if err == nil {
			a.instances.answered(addr)
			return res, nil
		}
		a.instances.failed(addr)
		errs = append(errs, err)
		if !errors.Is(err, ErrSidecarUnreachable) && !errors.Is(err, ErrMisrouted) || ctx.Err() != nil {
			break
		}
	}
	err = errors.Join(errs...)
	return nil, errorf(CodeDirectInvoke, err, "failed to invoke, id: %s, err: %v", req.AppID, strings.ReplaceAll(err.Error(), "\n", "; "))
}

// InvokeLocal serves an invocation another sidecar forwarded to this one:
// it calls this sidecar's app. A call meant for another app id is refused
// with an error wrapping ErrMisrouted.
//
// The app call does not end with ctx, as on the HTTP wire (whose server
// passes no context): the app channel bounds it with its own timeout, and
// a context that can end would cost a goroutine per call in httpapi's app
// channel. What ends with ctx is the wait before it: an actor call's wait
// for its actor's turn (actors.Runtime.CallLocal).
func (a *API) InvokeLocal(ctx context.Context, calleeID string, req *InvokeRequest) (*InvokeResponse, error) {
	if id, _ := splitAppID(calleeID); id != a.appID {
		err := fmt.Errorf("%w: this sidecar serves app %q, not %q", ErrMisrouted, a.appID, calleeID)
		return nil, errorf(CodeDirectInvoke, err, "failed to invoke, id: %s, err: %v", calleeID, err)
	}
	for _, h := range req.Headers {
		if strings.EqualFold(h.Key, ActorCallHeader) {
			return a.invokeActorLocal(ctx, h.Value, req)
		}
	}
	req.Headers = forwardable(req.Headers)
	var span tracing.Span
	if a.tracer != nil {
		// The server span of the call, named as daprd names it, child of
		// the caller's span; the app continues the trace from it.
		span = a.tracer.Start("CallLocal/"+a.appID+"/"+req.Method, tracing.Server, traceContextOf(req.Headers))
		tracing.SetAttributes(span, tracing.String("rpc.service", "ServiceInvocation"), tracing.String("dapr.invoke_method", req.Method))
		req.Headers = withTraceHeaders(req.Headers, span)
	}
	res, err := a.callApp(context.WithoutCancel(ctx), req)
	if err != nil {
		tracing.End(span, err)
		return nil, errorf(CodeDirectInvoke, err, "failed to invoke, id: %s, err: %v", calleeID, err)
	}
	tracing.EndHTTP(span, res.Status)
	return res, nil
}

// callApp calls this sidecar's app with req, adding the caller and callee
// headers daprd adds.
func (a *API) callApp(ctx context.Context, req *InvokeRequest) (*InvokeResponse, error) {
	app := a.appChannel()
	if app == nil {
		return nil, errors.New("app channel is not initialized (wapr was started without --app-port)")
	}
	headers := make([]Header, len(req.Headers), len(req.Headers)+3)
	copy(headers, req.Headers)
	headers = append(headers,
		Header{"dapr-caller-app-id", req.CallerAppID},
		Header{"dapr-callee-app-id", a.appID})
	if req.CallerNamespace != "" {
		headers = append(headers, Header{"dapr-caller-namespace", req.CallerNamespace})
	}
	path := "/" + req.Method
	res, err := app.Call(ctx, &AppRequest{
		Method: req.Verb, Path: path, Query: req.Query, Header: headers,
		Body: req.Body, ResponseHeaders: true, BufferBody: true,
	})
	if err != nil {
		return nil, err
	}
	return &InvokeResponse{Status: res.Status, Headers: res.Header, Body: res.Body, Buffer: res.Buffer}, nil
}

// splitAppID splits "id.namespace" into its parts.
func splitAppID(s string) (id, namespace string) {
	if i := strings.LastIndexByte(s, '.'); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

// notForwarded are the headers a sidecar never passes on: the hop-by-hop
// ones, which belong to one connection; dapr-api-token and dapr-app-id, the
// caller's credentials and routing, not the target's business; and the
// caller and callee headers, the sidecars' to set, never an app's.
var notForwarded = []string{
	"connection", "keep-alive", "proxy-connection", "proxy-authenticate",
	"proxy-authorization", "te", "trailer", "transfer-encoding",
	"upgrade", "content-length", "host", "dapr-api-token", "dapr-app-id",
	"dapr-caller-app-id", "dapr-callee-app-id", "dapr-caller-namespace",
	ActorCallHeader,
}

// forwardable drops hop-by-hop headers from h, in place, and any the
// Connection header names.
func forwardable(h []Header) []Header {
	var named []string
	for _, kv := range h {
		if strings.EqualFold(kv.Key, "connection") {
			for n := range strings.SplitSeq(kv.Value, ",") {
				named = append(named, strings.TrimSpace(n))
			}
		}
	}
	out := h[:0]
	for _, kv := range h {
		if containsFold(notForwarded, kv.Key) || containsFold(named, kv.Key) {
			continue
		}
		out = append(out, kv)
	}
	return out
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		// EqualFold compares rune by rune before it looks at lengths.
		if len(x) == len(s) && strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// ResponseHeaders drops the headers of a response a sidecar does not pass
// on (see notForwarded) and Date, which the answering server sets, in
// place.
func ResponseHeaders(h []Header) []Header {
	out := h[:0]
	for _, kv := range h {
		if !containsFold(notForwarded, kv.Key) && !strings.EqualFold(kv.Key, "date") {
			out = append(out, kv)
		}
	}
	return out
}

// instances balances calls across the sidecars of an app id and remembers
// the ones that stopped answering. It is safe for concurrent use; while every
// instance answers, a call takes no lock.
type instances struct {
	next sync.Map // app id → *atomic.Uint32, the round-robin position

	anyDown atomic.Int32 // len(down), read without mu
	mu      sync.Mutex
	down    map[string]downState // address → when to try it again
}

type downState struct {
	until    time.Time
	failures int
}

// Backoff bounds for an instance that stopped answering: it is skipped for
// minDown, doubling with each failed retry up to maxDown, while others of its
// app id answer.
const (
	minDown = 500 * time.Millisecond
	maxDown = 30 * time.Second
)

// order returns addrs in the order to try them: starting at the app id's
// round-robin position, the instances that answer first, then the ones
// marked down (tried only when all the others fail too). It may reorder
// addrs in place and return it.
func (s *instances) order(appID string, addrs []string) []string {
	ctr, ok := s.next.Load(appID)
	if !ok {
		ctr, _ = s.next.LoadOrStore(appID, new(atomic.Uint32))
	}
	start := int((ctr.(*atomic.Uint32).Add(1) - 1) % uint32(len(addrs)))
	// Rotate left by start, in place: addrs[start:] then addrs[:start].
	slices.Reverse(addrs[:start])
	slices.Reverse(addrs[start:])
	slices.Reverse(addrs)
	out := addrs
	if s.anyDown.Load() == 0 {
		return out
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	up := out[:0:0]
	var later []string
	for _, addr := range out {
		if d, ok := s.down[addr]; ok && now.Before(d.until) {
			later = append(later, addr)
		} else {
			up = append(up, addr)
		}
	}
	return append(up, later...)
}

func (s *instances) failed(addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down == nil {
		s.down = map[string]downState{}
	}
	d := s.down[addr]
	wait := min(minDown<<min(d.failures, 16), maxDown)
	s.down[addr] = downState{until: time.Now().Add(wait), failures: d.failures + 1}
	s.anyDown.Store(int32(len(s.down)))
}

func (s *instances) answered(addr string) {
	if s.anyDown.Load() == 0 {
		return
	}
	s.mu.Lock()
	delete(s.down, addr)
	s.anyDown.Store(int32(len(s.down)))
	s.mu.Unlock()
}
