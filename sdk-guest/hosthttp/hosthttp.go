// Package hosthttp sends HTTP requests through the host's HTTP client
// (wapr_http_v1), with the request and response as abi messages:
//
//	resp, err := hosthttp.Do(ctx, &abi.HTTPRequest{Method: "GET", URL: "https://api.example.com/items"})
//
// The host checks the destination against the component's allow-list after
// resolving it, runs TLS, applies the call's deadline (or
// req.TimeoutMillis, whichever is shorter), caps the response size, and
// follows redirects only to allowed destinations. Using it instead of
// net/http keeps a module small: net/http alone adds about 8 MB of Wasm.
//
// The package is named hosthttp so it never shadows net/http. In native
// builds (go test) Do uses net/http's default transport and there is no
// allow-list.
package hosthttp

import (
	"context"
	"time"

	"github.com/wapr-dev/wapr/sdk-guest/internal/hosterr"
)

// Errors Do may fail with; test with errors.Is. A timeout matches
// os.ErrDeadlineExceeded instead.
var (
	ErrDenied  error = hosterr.Denied  // the destination is not on the allow-list
	ErrRefused error = hosterr.Refused // connection refused, or the name does not resolve
	ErrIO      error = hosterr.IO      // the connection failed or was reset
	ErrLimit   error = hosterr.Limit   // the response exceeds the host's size cap
	ErrInvalid error = hosterr.Invalid // the request is malformed (method, URL, headers)
)

// timeoutMillis returns the request timeout to send: the shorter of the
// request's own and ctx's deadline; 0 means the call's deadline. ok is false
// when ctx's deadline has already passed.
func timeoutMillis(ctx context.Context, own uint32) (uint32, bool) {
	dl, has := ctx.Deadline()
	if !has {
		return own, true
	}
	left := time.Until(dl)
	if left <= 0 {
		return 0, false
	}
	ms := uint32(min((left+time.Millisecond-1)/time.Millisecond, 1<<31))
	if own != 0 && own < ms {
		return own, true
	}
	return ms, true
}

func opName(method string) string {
	if method == "" {
		method = "GET"
	}
	return "hosthttp: " + method
}
