package httpapi

import (
	"testing"

	"github.com/valyala/fasthttp"
)

// TestSpanName: API calls are named by their path, invocations as daprd
// names them, whether the app id is in the path or in a dapr-app-id header.
func TestSpanName(t *testing.T) {
	for _, tc := range []struct{ path, appIDHeader, name, target, method string }{
		{"/v1.0/state/s/k", "", "/v1.0/state/s/k", "", ""},
		{"/v1.0/invoke/checkout/method/orders/7", "", "CallLocal/checkout/orders/7", "checkout", "orders/7"},
		{"/v1.0/invoke/checkout.prod/method/pay", "", "CallLocal/checkout.prod/pay", "checkout.prod", "pay"},
		{"/orders/7", "checkout", "CallLocal/checkout/orders/7", "checkout", "orders/7"},
		{"/v1.0/state/s/k", "checkout", "/v1.0/state/s/k", "", ""},
		{"/v1.0/invoke/checkout", "", "/v1.0/invoke/checkout", "", ""},
	} {
		var ctx fasthttp.RequestCtx
		if tc.appIDHeader != "" {
			ctx.Request.Header.Set("dapr-app-id", tc.appIDHeader)
		}
		name, target, method := spanName(&ctx, tc.path)
		if name != tc.name || target != tc.target || method != tc.method {
			t.Errorf("spanName(%q, dapr-app-id %q) = %q, %q, %q; want %q, %q, %q", tc.path, tc.appIDHeader, name, target, method, tc.name, tc.target, tc.method)
		}
	}
}
