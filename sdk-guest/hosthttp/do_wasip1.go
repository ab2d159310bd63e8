//go:build wasip1

package hosthttp

import (
	"context"
	"unsafe"

	"github.com/wapr-dev/wapr/abi"
	"github.com/wapr-dev/wapr/sdk-guest/internal/hosterr"
)

//go:wasmimport wapr_http_v1 request
func hostRequest(ptr unsafe.Pointer, n uint32) int32

//go:wasmimport wapr_http_v1 response_read
func hostResponseRead(buf unsafe.Pointer, limit uint32) int32

// Do sends req through the host and returns the whole response. Any HTTP
// status is a response, not an error; errors are transport failures
// (ErrDenied, ErrRefused, ErrIO, ErrLimit, a deadline). The response and its
// Body belong to the caller. Do does not keep req.
func Do(ctx context.Context, req *abi.HTTPRequest) (*abi.HTTPResponse, error) {
	if req == nil {
		return nil, &hosterr.Error{Op: "hosthttp", Code: hosterr.Invalid}
	}
	fail := func(code hosterr.Code) error {
		return &hosterr.Error{Op: opName(req.Method), Target: req.URL, Code: code}
	}
	r := *req
	var ok bool
	if r.TimeoutMillis, ok = timeoutMillis(ctx, r.TimeoutMillis); !ok {
		return nil, fail(hosterr.Timeout)
	}
	var e abi.Encoder
	r.Encode(&e)
	msg := e.Bytes()
	n := hostRequest(unsafe.Pointer(unsafe.SliceData(msg)), uint32(len(msg)))
	if n < 0 {
		return nil, fail(hosterr.Code(n))
	}
	buf := make([]byte, n)
	for off := 0; off < len(buf); {
		got := hostResponseRead(unsafe.Pointer(&buf[off]), uint32(len(buf)-off))
		if got <= 0 {
			if got == 0 {
				got = abi.ErrIO // the host announced more than it delivered
			}
			return nil, fail(hosterr.Code(got))
		}
		off += int(got)
	}
	var resp abi.HTTPResponse
	if err := resp.Decode(buf); err != nil {
		return nil, &hosterr.Error{Op: opName(req.Method), Target: req.URL, Code: hosterr.IO, Err: err}
	}
	return &resp, nil
}
