package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// AppCall says what a call to the app is for. An HTTP app channel ignores
// it (method and path say it all); the gRPC app channel makes the matching
// AppCallback call instead, from the fields that kind of call sets.
type AppCall int

// Kinds of calls to the app.
const (
	// AppCallInvoke is a service invocation: Method is the verb, Path the
	// method (and Query its query string).
	AppCallInvoke AppCall = iota
	// AppCallSubscriptions asks for the app's programmatic subscriptions
	// (GET /dapr/subscribe).
	AppCallSubscriptions
	// AppCallTopicEvent delivers one pub/sub message (a CloudEvent in Body)
	// of PubSub/Topic to Path.
	AppCallTopicEvent
	// AppCallBindingProbe asks whether the app takes events of the input
	// binding Binding (OPTIONS /<route>).
	AppCallBindingProbe
	// AppCallBindingEvent delivers one event of the input binding Binding.
	AppCallBindingEvent
	// AppCallConfigurationUpdate delivers a configuration change.
	AppCallConfigurationUpdate
)

// AppRequest is a call from the sidecar to the app.
type AppRequest struct {
	// Call is what the call is for; the zero value is an invocation.
	Call AppCall
	// PubSub and Topic are set for AppCallTopicEvent; Binding for the
	// binding calls.
	PubSub, Topic, Binding string

	Method string
	Path   string // absolute path, may carry a query
	// Query, when set, is appended to Path after a '?'.
	Query       string
	ContentType string
	Headers     map[string]string
	// Header are sent as given, after Headers; a name may repeat.
	Header []Header
	Body   []byte
	// ResponseHeaders asks for the app's response headers in
	// AppResponse.Header.
	ResponseHeaders bool
	// BufferBody lets the channel put the answer's body in a pooled
	// Buffer (AppResponse.Buffer), which the caller gives back once done
	// with the body. Without it the body is an allocation of its own.
	BufferBody bool
}

// AppResponse is the app's answer. Body is owned by the caller.
type AppResponse struct {
	Status      int
	ContentType string
	Body        []byte
	// Header holds the response headers, hop-by-hop ones dropped, when the
	// request asked for them.
	Header []Header
	// Buffer, when not nil, is the pooled memory Body lives in (only when
	// the request set BufferBody); see InvokeResponse.Buffer.
	Buffer *Buffer
}

// AppChannel calls the app. Implementations are safe for concurrent use and
// honour ctx's deadline. A transport failure is an error; any HTTP status,
// even 500, is a response. Call keeps nothing of req once it returns: the
// mux wire's called sidecar reuses the memory of a request's body.
type AppChannel interface {
	Call(ctx context.Context, req *AppRequest) (*AppResponse, error)
}

// WithWaitContext returns ctx for an app call whose waits before it reaches
// the app (for a slot of --app-max-concurrency, for the app to be healthy)
// also end when wait is done. Delivery uses it: a message whose subscription
// stops gives up waiting, while a call already at the app finishes.
func WithWaitContext(ctx, wait context.Context) context.Context {
	return context.WithValue(ctx, waitKey{}, wait)
}

type waitKey struct{}

// waitContext is ctx's wait context (see WithWaitContext), nil when it has
// none.
func waitContext(ctx context.Context) context.Context {
	w, _ := ctx.Value(waitKey{}).(context.Context)
	return w
}

// LimitApp returns app with at most n calls in flight at once (daprd's
// --app-max-concurrency), for deliveries and invocations alike; a call
// waiting for its turn gives up when its ctx (or wait context) is done.
// n <= 0 returns app.
func LimitApp(app AppChannel, n int) AppChannel {
	if n <= 0 {
		return app
	}
	return &limitedApp{app: app, sem: make(chan struct{}, n)}
}

type limitedApp struct {
	app AppChannel
	sem chan struct{}
}

func (l *limitedApp) Call(ctx context.Context, req *AppRequest) (*AppResponse, error) {
	select {
	case l.sem <- struct{}{}:
	default:
		w := waitContext(ctx)
		var waitDone <-chan struct{}
		if w != nil {
			waitDone = w.Done()
		}
		select {
		case l.sem <- struct{}{}:
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for a free slot of --app-max-concurrency: %w", ctx.Err())
		case <-waitDone:
			return nil, fmt.Errorf("waiting for a free slot of --app-max-concurrency: %w", w.Err())
		}
	}
	defer func() { <-l.sem }()
	return l.app.Call(ctx, req)
}

// ErrAppUnhealthy refuses an invocation while the app fails its health
// checks; the message is daprd's.
var ErrAppUnhealthy = errors.New("app is not in a healthy state")

// HealthGate says whether the app passes its health checks (daprd's
// --enable-app-health-check). Implementations are safe for concurrent use.
type HealthGate interface {
	// Healthy reports whether the app is healthy now.
	Healthy() bool
	// WaitHealthy returns nil once the app is healthy, at once if it is,
	// or ctx's error when ctx is done first.
	WaitHealthy(ctx context.Context) error
}

// GateApp returns app behind gate, as daprd's app health checks keep an
// unhealthy app from being called: while gate says the app is unhealthy,
// an invocation (AppCallInvoke) fails at once with ErrAppUnhealthy, and
// every other call (a pub/sub message, an input binding event, a
// configuration update, the subscriptions request) waits until the app is
// healthy again or its ctx (or wait context) is done, so the message stays
// with its broker or binding rather than being lost. Wrap LimitApp's
// channel, not the other way round, so a waiting call holds no slot of
// --app-max-concurrency.
func GateApp(app AppChannel, gate HealthGate) AppChannel {
	return &gatedApp{app: app, gate: gate}
}

type gatedApp struct {
	app  AppChannel
	gate HealthGate
}

func (g *gatedApp) Call(ctx context.Context, req *AppRequest) (*AppResponse, error) {
	if !g.gate.Healthy() {
		if req.Call == AppCallInvoke {
			return nil, ErrAppUnhealthy
		}
		wait := ctx
		if w := waitContext(ctx); w != nil {
			var cancel context.CancelFunc
			wait, cancel = context.WithCancel(ctx)
			defer cancel()
			defer context.AfterFunc(w, cancel)()
		}
		if err := g.gate.WaitHealthy(wait); err != nil {
			return nil, fmt.Errorf("waiting for the app to be healthy: %w", err)
		}
	}
	return g.app.Call(ctx, req)
}

// TopicOutcome is what an app's answer to a delivered message asks of the
// broker.
type TopicOutcome int

const (
	TopicSuccess TopicOutcome = iota // acknowledge
	TopicRetry                       // redeliver
	TopicDrop                        // drop (to the dead-letter topic, if any)
)

// ReadTopicOutcome reads an app's answer to a delivered message as daprd
// does: 2xx with no status or SUCCESS acks, RETRY (or an unknown status)
// redelivers, DROP drops; 404 drops; any other status redelivers. Delivery
// acts on it and metrics count by it: one rule for both.
func ReadTopicOutcome(res *AppResponse) TopicOutcome {
	switch {
	case res.Status == 404:
		return TopicDrop
	case res.Status/100 != 2:
		return TopicRetry
	}
	body := bytes.TrimSpace(res.Body)
	if len(body) == 0 || body[0] != '{' {
		return TopicSuccess
	}
	var ans struct {
		Status *string `json:"status"`
	}
	if json.Unmarshal(body, &ans) != nil || ans.Status == nil {
		return TopicSuccess
	}
	switch strings.ToUpper(*ans.Status) {
	case "", "SUCCESS":
		return TopicSuccess
	case "DROP":
		return TopicDrop
	default:
		return TopicRetry
	}
}
