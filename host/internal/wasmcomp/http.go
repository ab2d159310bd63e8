package wasmcomp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/wapr-dev/wapr/abi"
	"github.com/wapr-dev/wapr/host/internal/engine"
)

// newHTTPClient returns the client behind wapr_http_v1 for c: every
// connection, redirects included, goes through the allow-list check.
func newHTTPClient(c *Component) *http.Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			conn, code := c.dialChecked(ctx, host, port)
			if code != 0 {
				return nil, &dialRefused{code: code, addr: addr}
			}
			return conn, nil
		},
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: c.settings.CallTimeout,
	}
	return &http.Client{Transport: tr}
}

type dialRefused struct {
	code int32
	addr string
}

func (e *dialRefused) Error() string { return "wasm guest may not connect to " + e.addr }

// httpRequest(req_ptr, req_len) -> response length | error.
func httpRequest(ctx context.Context, c engine.Caller, stack []uint64) {
	i := instanceOf(c)
	if i == nil {
		setI32(stack, abi.ErrInvalid)
		return
	}
	i.httpResp, i.httpOff = nil, 0
	raw, ok := c.Memory().Read(uint32(stack[0]), uint32(stack[1]))
	if !ok {
		setI32(stack, abi.ErrInvalid)
		return
	}
	var req abi.HTTPRequest
	if err := req.Decode(raw); err != nil {
		setI32(stack, abi.ErrInvalid)
		return
	}
	if req.TimeoutMillis > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(req.TimeoutMillis)*time.Millisecond)
		defer cancel()
	}
	hreq, err := http.NewRequestWithContext(ctx, req.Method, req.URL, bytes.NewReader(req.Body))
	if err != nil || (hreq.URL.Scheme != "http" && hreq.URL.Scheme != "https") {
		setI32(stack, abi.ErrInvalid)
		return
	}
	for k, v := range req.Headers {
		hreq.Header.Set(k, v)
	}
	res, err := i.c.http.Do(hreq)
	if err != nil {
		var refused *dialRefused
		switch {
		case errors.As(err, &refused):
			setI32(stack, refused.code)
		case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
			setI32(stack, abi.ErrTimeout)
		default:
			i.c.log.Warn("guest HTTP request failed", "url", req.URL, "error", err)
			setI32(stack, abi.ErrIO)
		}
		return
	}
	defer res.Body.Close()
	limit := int64(i.c.settings.MaxResponseBytes)
	body, err := io.ReadAll(io.LimitReader(res.Body, limit+1))
	if err != nil {
		if ctx.Err() != nil {
			setI32(stack, abi.ErrTimeout)
		} else {
			setI32(stack, abi.ErrIO)
		}
		return
	}
	if int64(len(body)) > limit {
		setI32(stack, abi.ErrLimit)
		return
	}
	out := abi.HTTPResponse{Status: uint32(res.StatusCode), Headers: make(map[string]string, len(res.Header)), Body: body}
	for k, vs := range res.Header {
		out.Headers[k] = strings.Join(vs, ", ")
	}
	var e abi.Encoder
	out.Encode(&e)
	i.httpResp = e.Bytes()
	setI32(stack, int32(len(i.httpResp)))
}

// httpResponseRead(buf, limit) -> n: streams the pending response.
func httpResponseRead(_ context.Context, c engine.Caller, stack []uint64) {
	i := instanceOf(c)
	if i == nil {
		setI32(stack, abi.ErrInvalid)
		return
	}
	buf, limit := uint32(stack[0]), uint32(stack[1])
	n := min(int(limit), len(i.httpResp)-i.httpOff)
	if n > 0 && !c.Memory().Write(buf, i.httpResp[i.httpOff:i.httpOff+n]) {
		setI32(stack, abi.ErrInvalid)
		return
	}
	i.httpOff += n
	setI32(stack, int32(n))
}
