//go:build !wasip1

package hosthttp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/wapr-dev/wapr/abi"
	"github.com/wapr-dev/wapr/sdk-guest/internal/hosterr"
)

// maxNativeBody bounds a response body in native builds, standing in for the
// host's response cap.
const maxNativeBody = 16 << 20

// Do sends req with net/http (native builds), following redirects, and
// returns the whole response. Errors are classified as in Wasm.
func Do(ctx context.Context, req *abi.HTTPRequest) (*abi.HTTPResponse, error) {
	if req == nil {
		return nil, &hosterr.Error{Op: "hosthttp", Code: hosterr.Invalid}
	}
	fail := func(code hosterr.Code, err error) error {
		return &hosterr.Error{Op: opName(req.Method), Target: req.URL, Code: code, Err: err}
	}
	ms, ok := timeoutMillis(ctx, req.TimeoutMillis)
	if !ok {
		return nil, fail(hosterr.Timeout, context.DeadlineExceeded)
	}
	if ms > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(ms)*time.Millisecond)
		defer cancel()
	}
	var body io.Reader
	if len(req.Body) > 0 {
		body = bytes.NewReader(req.Body)
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	hreq, err := http.NewRequestWithContext(ctx, method, req.URL, body)
	if err != nil {
		return nil, fail(hosterr.Invalid, err)
	}
	for k, v := range req.Headers {
		if strings.EqualFold(k, "Host") {
			hreq.Host = v
			continue
		}
		hreq.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		return nil, fail(classify(ctx, err), err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxNativeBody+1))
	if err != nil {
		return nil, fail(classify(ctx, err), err)
	}
	if len(data) > maxNativeBody {
		return nil, fail(hosterr.Limit, nil)
	}
	out := &abi.HTTPResponse{Status: uint32(resp.StatusCode), Body: data, Headers: make(map[string]string, len(resp.Header))}
	for k, vs := range resp.Header {
		out.Headers[k] = strings.Join(vs, ", ")
	}
	return out, nil
}

func classify(ctx context.Context, err error) hosterr.Code {
	var dnsErr *net.DNSError
	var ne net.Error
	switch {
	case ctx.Err() != nil, errors.As(err, &ne) && ne.Timeout():
		return hosterr.Timeout
	case errors.Is(err, syscall.ECONNREFUSED), errors.As(err, &dnsErr):
		return hosterr.Refused
	}
	return hosterr.IO
}
