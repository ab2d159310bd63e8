package api

import (
	"context"
	"fmt"
)

// AppRequest is a call from the sidecar to the app.
type AppRequest struct {
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
}

// AppResponse is the app's answer. Body is owned by the caller.
type AppResponse struct {
	Status      int
	ContentType string
	Body        []byte
	// Header holds the response headers, hop-by-hop ones dropped, when the
	// request asked for them.
	Header []Header
}

// AppChannel calls the app. Implementations are safe for concurrent use and
// honour ctx's deadline. A transport failure is an error; any HTTP status,
// even 500, is a response.
type AppChannel interface {
	Call(ctx context.Context, req *AppRequest) (*AppResponse, error)
}

// LimitApp returns app with at most n calls in flight at once (daprd's
// --app-max-concurrency), for deliveries and invocations alike; a call
// waiting for its turn gives up when its ctx is done. n <= 0 returns app.
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
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for a free slot of --app-max-concurrency: %w", ctx.Err())
	}
	defer func() { <-l.sem }()
	return l.app.Call(ctx, req)
}
