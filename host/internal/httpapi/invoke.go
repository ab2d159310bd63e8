package httpapi

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wapr-dev/wapr/host/internal/api"
)

// MaxResponseBodySize bounds the body of an app's answer (to an invocation,
// a delivery or a subscription request) and of another sidecar's answer:
// bodies are held in memory, so they must be bounded. Larger answers fail
// the call.
const MaxResponseBodySize = 64 << 20

// Headers of the sidecar-to-sidecar channel. The calling sidecar names both
// apps; the called one checks that it serves the callee and says so with
// headerMisrouted when it does not.
const (
	headerCaller    = "dapr-caller-app-id"
	headerCallerNS  = "dapr-caller-namespace"
	headerCallee    = "dapr-callee-app-id"
	headerMisrouted = "Wapr-Misrouted" // as fasthttp servers write it
)

// invokePrefix is the invocation route's path up to the app id.
const invokePrefix = "/v1.0/invoke/"

// routeInvoke serves /v1.0/invoke/{app-id}/method/{method…} for every verb.
// The method path is taken from the undecoded path, so it reaches the app
// as the caller wrote it.
func (s *Server) routeInvoke(ctx *fasthttp.RequestCtx, appID string) {
	raw := string(ctx.URI().PathOriginal())
	rest := raw[len(invokePrefix):] // "{app-id}/method/{method…}"
	_, rest, _ = strings.Cut(rest, "/")
	method := strings.TrimPrefix(strings.TrimPrefix(rest, "method"), "/")
	s.invoke(ctx, appID, method)
}

// fallback serves a request no API route takes: with a dapr-app-id header
// (or Basic credentials whose user is dapr-app-id) it is an invocation of
// that app, its whole path the method; without, daprd answers 404
// ERR_DIRECT_INVOKE, and so does wapr.
func (s *Server) fallback(ctx *fasthttp.RequestCtx) {
	appID := string(ctx.Request.Header.Peek("dapr-app-id"))
	if appID == "" {
		appID = basicAuthAppID(ctx.Request.Header.Peek("Authorization"))
	}
	if appID == "" {
		s.writeAPIError(ctx, &api.Error{Code: api.CodeDirectInvokeNoAppID,
			Message: "failed getting app id either from the URL path or the header dapr-app-id"})
		return
	}
	s.invoke(ctx, appID, strings.TrimPrefix(string(ctx.URI().PathOriginal()), "/"))
}

// basicAuthAppID returns the app id of Basic credentials "dapr-app-id:<id>",
// the form http://dapr-app-id:<id>@localhost:3500/method takes.
func basicAuthAppID(h []byte) string {
	const prefix = "Basic "
	if len(h) <= len(prefix) || !strings.EqualFold(string(h[:len(prefix)]), prefix) {
		return ""
	}
	dec, err := base64.StdEncoding.DecodeString(string(h[len(prefix):]))
	if err != nil {
		return ""
	}
	user, pass, ok := strings.Cut(string(dec), ":")
	if !ok || user != "dapr-app-id" {
		return ""
	}
	return pass
}

func (s *Server) invoke(ctx *fasthttp.RequestCtx, appID, method string) {
	req := &api.InvokeRequest{
		AppID:   appID,
		Verb:    string(ctx.Method()),
		Method:  method,
		Query:   string(ctx.URI().QueryString()),
		Headers: requestHeaders(&ctx.Request.Header),
		// Invoke does not keep the body past the call, during which
		// fasthttp leaves it alone.
		Body: ctx.PostBody(),
	}
	res, err := s.api.Invoke(requestContext(ctx), req)
	if err != nil {
		s.writeAPIError(ctx, err)
		return
	}
	writeInvokeResponse(ctx, res)
	res.Release()
}

// serveSidecar is the handler of the sidecar-to-sidecar channel: a call
// another sidecar forwarded, for this sidecar's app.
func (s *Server) serveSidecar(ctx *fasthttp.RequestCtx) {
	req := &api.InvokeRequest{
		Verb:            string(ctx.Method()),
		Method:          strings.TrimPrefix(string(ctx.URI().PathOriginal()), "/"),
		Query:           string(ctx.URI().QueryString()),
		Headers:         requestHeaders(&ctx.Request.Header),
		Body:            ctx.PostBody(),
		CallerAppID:     string(ctx.Request.Header.Peek(headerCaller)),
		CallerNamespace: string(ctx.Request.Header.Peek(headerCallerNS)),
	}
	res, err := s.api.InvokeLocal(requestContext(ctx), string(ctx.Request.Header.Peek(headerCallee)), req)
	if err != nil {
		if errors.Is(err, api.ErrMisrouted) {
			ctx.Response.Header.Set(headerMisrouted, "1")
		}
		s.writeAPIError(ctx, err)
		return
	}
	writeInvokeResponse(ctx, res)
	res.Release()
}

// requestHeaders copies every header of h; the api layer decides which go on.
func requestHeaders(h *fasthttp.RequestHeader) []api.Header {
	var c headerCopy
	for k, v := range h.All() {
		c.size += len(k) + len(v)
	}
	c.start(h.Len())
	for k, v := range h.All() {
		c.add(k, v)
	}
	return c.out
}

// responseHeaders copies the headers of an answer but the hop-by-hop ones.
func responseHeaders(h *fasthttp.ResponseHeader) []api.Header {
	var c headerCopy
	for k, v := range h.All() {
		c.size += len(k) + len(v)
	}
	c.start(h.Len())
	for k, v := range h.All() {
		c.add(k, v)
	}
	return api.ResponseHeaders(c.out)
}

// headerCopy copies header pairs into one string that every key and value
// is a part of: two allocations for a message's headers rather than two per
// header. Its users range over a concrete header type's All twice, first
// adding up size, so that the loops inline and nothing of theirs escapes (a
// function taking an iter.Seq2 cost nine allocations a call).
type headerCopy struct {
	size int // the bytes of every key and value
	b    strings.Builder
	out  []api.Header
}

// start makes room for n pairs of size bytes in all.
func (c *headerCopy) start(n int) {
	c.b.Grow(c.size)
	c.out = make([]api.Header, 0, n)
}

// add appends a pair. What String returned before stays valid as the
// builder grows, so every pair may point into the string.
func (c *headerCopy) add(k, v []byte) {
	off := c.b.Len()
	c.b.Write(k)
	c.b.Write(v)
	s := c.b.String()
	c.out = append(c.out, api.Header{Key: s[off : off+len(k)], Value: s[off+len(k):]})
}

// writeInvokeResponse copies res into ctx's response: res may be released
// after.
func writeInvokeResponse(ctx *fasthttp.RequestCtx, res *api.InvokeResponse) {
	for _, h := range res.Headers {
		ctx.Response.Header.Add(h.Key, h.Value)
	}
	ctx.SetStatusCode(res.Status)
	ctx.SetBody(res.Body)
}

// SidecarClient is the calling end of the sidecar-to-sidecar channel's
// HTTP/1.1 wire (wapr run --sidecar-wire http), over pooled keep-alive
// connections; the default wire is package sidecarwire's mux (see
// docs/building-blocks/invoke.md). It is safe for concurrent use.
type SidecarClient struct {
	client *fasthttp.Client
}

var _ api.SidecarChannel = (*SidecarClient)(nil)

// NewSidecarClient returns a client with no connection yet; it keeps
// connections to each sidecar it calls. The called sidecar bounds request
// bodies; answers are bounded by MaxResponseBodySize.
func NewSidecarClient() *SidecarClient {
	return &SidecarClient{client: &fasthttp.Client{
		NoDefaultUserAgentHeader:      true,
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
		MaxResponseBodySize:           MaxResponseBodySize,
		MaxConnsPerHost:               1024,
		MaxConnWaitTimeout:            10 * time.Second,
		// Shorter than the called server's IdleTimeout, so this end closes
		// an idle connection first and never sends on one being closed.
		MaxIdleConnDuration: 30 * time.Second,
		DialTimeout: func(addr string, timeout time.Duration) (net.Conn, error) {
			return fasthttp.DialTimeout(addr, min(timeout, 3*time.Second))
		},
	}}
}

// Call forwards req to the sidecar at addr.
func (c *SidecarClient) Call(ctx context.Context, addr string, req *api.InvokeRequest) (*api.InvokeResponse, error) {
	hreq, hres := acquire()
	hreq.Header.SetMethod(req.Verb)
	setURI(hreq, "http://", addr, "/", req.Method, req.Query)
	for _, h := range req.Headers {
		hreq.Header.Add(h.Key, h.Value)
	}
	hreq.Header.Set(headerCaller, req.CallerAppID)
	if req.CallerNamespace != "" {
		hreq.Header.Set(headerCallerNS, req.CallerNamespace)
	}
	hreq.Header.Set(headerCallee, req.AppID)
	hreq.SetBody(req.Body)
	if err := do(ctx, c.client, hreq, hres); err != nil {
		if isDialError(err) || errors.Is(err, fasthttp.ErrConnectionClosed) {
			err = fmt.Errorf("%w: %v", api.ErrSidecarUnreachable, err)
		}
		return nil, fmt.Errorf("calling the sidecar at %s: %w", addr, err)
	}
	defer release(hreq, hres)
	if len(hres.Header.Peek(headerMisrouted)) > 0 {
		return nil, fmt.Errorf("calling the sidecar at %s: %w", addr, api.ErrMisrouted)
	}
	return &api.InvokeResponse{
		Status:  hres.StatusCode(),
		Headers: responseHeaders(&hres.Header),
		Body:    append([]byte(nil), hres.Body()...),
	}, nil
}

// Close drops idle connections.
func (c *SidecarClient) Close() { c.client.CloseIdleConnections() }

func isDialError(err error) bool {
	var op *net.OpError
	return errors.Is(err, fasthttp.ErrDialTimeout) || (errors.As(err, &op) && op.Op == "dial")
}

// acquire takes a request and a response from fasthttp's pools; release
// returns them.
func acquire() (*fasthttp.Request, *fasthttp.Response) {
	return fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
}

func release(hreq *fasthttp.Request, hres *fasthttp.Response) {
	fasthttp.ReleaseRequest(hreq)
	fasthttp.ReleaseResponse(hres)
}

// setURI sets the request's URI to the concatenation of parts, with query
// (raw, without '?') when there is one. It joins them in a buffer on the
// stack, for the request copies the URI.
func setURI(hreq *fasthttp.Request, a, b, c, d, query string) {
	var buf [256]byte
	uri := append(append(append(append(buf[:0], a...), b...), c...), d...)
	if query != "" {
		uri = append(append(uri, '?'), query...)
	}
	hreq.SetRequestURIBytes(uri)
}

// deadlineDoer is a fasthttp client.
type deadlineDoer interface {
	DoDeadline(req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time) error
}

// do runs one request until ctx's deadline (defaultAppTimeout without one).
// When ctx ends first it returns ctx's error at once; the request runs on
// until its deadline and owns hreq and hres till then, so they are released
// afterwards. On success the caller releases them; on error do has, or
// will.
func do(ctx context.Context, client deadlineDoer, hreq *fasthttp.Request, hres *fasthttp.Response) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(defaultAppTimeout)
	}
	var err error
	if ctx.Done() == nil {
		err = client.DoDeadline(hreq, hres, deadline)
	} else {
		errc := make(chan error, 1)
		go func() { errc <- client.DoDeadline(hreq, hres, deadline) }()
		select {
		case err = <-errc:
		case <-ctx.Done():
			go func() { <-errc; release(hreq, hres) }()
			return ctx.Err()
		}
	}
	if err != nil {
		release(hreq, hres)
	}
	return err
}
