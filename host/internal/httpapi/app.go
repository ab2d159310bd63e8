package httpapi

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wapr-dev/wapr/host/internal/api"
	"github.com/wapr-dev/wapr/host/internal/rawsock"
)

// AppChannel calls the app over HTTP with a pooled fasthttp client. It is
// safe for concurrent use.
type AppChannel struct {
	client   *fasthttp.HostClient
	base     string // "http://" + the app's address
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
			Dial:                          dialApp,
			MaxConns:                      maxConns,
			MaxIdleConnDuration:           90 * time.Second,
			NoDefaultUserAgentHeader:      true,
			DisableHeaderNamesNormalizing: true,
			MaxResponseBodySize:           MaxResponseBodySize,
			// Invocation passes method paths on exactly as written.
			DisablePathNormalizing: true,
		},
		base:     "http://" + addr,
		appID:    appID,
		appToken: appToken,
	}
}

var _ api.AppChannel = (*AppChannel)(nil)

// Call sends req to the app and returns its answer.
func (c *AppChannel) Call(ctx context.Context, req *api.AppRequest) (*api.AppResponse, error) {
	hreq, hres := acquire()
	hreq.Header.SetMethod(req.Method)
	setURI(hreq, c.base, req.Path, "", "", req.Query)
	if req.ContentType != "" {
		hreq.Header.SetContentType(req.ContentType)
	}
	for k, v := range req.Headers {
		hreq.Header.Set(k, v)
	}
	for _, h := range req.Header {
		hreq.Header.Add(h.Key, h.Value)
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
	if err := do(ctx, c.client, hreq, hres); err != nil {
		return nil, fmt.Errorf("calling the app at %s%s: %w", c.client.Addr, req.Path, err)
	}
	res := &api.AppResponse{
		Status:      hres.StatusCode(),
		ContentType: string(hres.Header.ContentType()),
	}
	if body := hres.Body(); req.BufferBody && len(body) > 0 {
		res.Buffer = api.GetBuffer(len(body))
		res.Body = res.Buffer.B
		copy(res.Body, body)
	} else {
		res.Body = append([]byte(nil), body...)
	}
	if req.ResponseHeaders {
		res.Header = responseHeaders(&hres.Header)
	}
	release(hreq, hres)
	return res, nil
}

// Close drops idle connections.
func (c *AppChannel) Close() { c.client.CloseIdleConnections() }

// dialApp dials as fasthttp does by default, with rawsock's reads and writes.
func dialApp(addr string) (net.Conn, error) {
	c, err := fasthttp.Dial(addr)
	if err != nil {
		return nil, err
	}
	return rawsock.Conn(c), nil
}
