package httpapi

import (
	"context"
	"fmt"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wapr-dev/wapr/host/internal/api"
)

// AppChannel calls the app over HTTP with a pooled fasthttp client. It is
// safe for concurrent use.
type AppChannel struct {
	client   *fasthttp.HostClient
	appID    string
	appToken string
}

// defaultAppTimeout bounds a call to the app whose context has no deadline.
const defaultAppTimeout = 60 * time.Second

// NewAppChannel returns a channel to the app listening on addr (host:port).
// appToken, when set, is sent as dapr-api-token on every call.
// maxConns bounds concurrent connections (0 means fasthttp's default).
func NewAppChannel(addr, appID, appToken string, maxConns int) *AppChannel {
	return &AppChannel{
		client: &fasthttp.HostClient{
			Addr:                          addr,
			MaxConns:                      maxConns,
			MaxIdleConnDuration:           90 * time.Second,
			NoDefaultUserAgentHeader:      true,
			DisableHeaderNamesNormalizing: true,
			MaxResponseBodySize:           64 << 20,
		},
		appID:    appID,
		appToken: appToken,
	}
}

var _ api.AppChannel = (*AppChannel)(nil)

// Call sends req to the app and returns its answer.
func (c *AppChannel) Call(ctx context.Context, req *api.AppRequest) (*api.AppResponse, error) {
	hreq := fasthttp.AcquireRequest()
	hres := fasthttp.AcquireResponse()
	release := func() {
		fasthttp.ReleaseRequest(hreq)
		fasthttp.ReleaseResponse(hres)
	}

	hreq.Header.SetMethod(req.Method)
	hreq.SetRequestURI("http://" + c.client.Addr + req.Path)
	if req.ContentType != "" {
		hreq.Header.SetContentType(req.ContentType)
	}
	for k, v := range req.Headers {
		hreq.Header.Set(k, v)
	}
	if c.appID != "" {
		hreq.Header.Set("dapr-app-id", c.appID)
	}
	if c.appToken != "" {
		hreq.Header.Set("dapr-api-token", c.appToken)
	}
	if len(req.Body) > 0 {
		hreq.SetBody(req.Body)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(defaultAppTimeout)
	}
	var err error
	if ctx.Done() == nil {
		err = c.client.DoDeadline(hreq, hres, deadline)
	} else {
		errc := make(chan error, 1)
		go func() { errc <- c.client.DoDeadline(hreq, hres, deadline) }()
		select {
		case err = <-errc:
		case <-ctx.Done():
			// The call finishes by the deadline at the latest and owns
			// hreq/hres until then; release them only afterwards.
			go func() { <-errc; release() }()
			return nil, fmt.Errorf("calling the app at %s%s: %w", c.client.Addr, req.Path, ctx.Err())
		}
	}
	if err != nil {
		release()
		return nil, fmt.Errorf("calling the app at %s%s: %w", c.client.Addr, req.Path, err)
	}
	res := &api.AppResponse{
		Status:      hres.StatusCode(),
		ContentType: string(hres.Header.ContentType()),
		Body:        append([]byte(nil), hres.Body()...),
	}
	release()
	return res, nil
}

// Close drops idle connections.
func (c *AppChannel) Close() { c.client.CloseIdleConnections() }
