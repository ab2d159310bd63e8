package grpcapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"

	commonv1pb "github.com/dapr/dapr/pkg/proto/common/v1"
	runtimev1pb "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/wapr-dev/wapr/host/internal/api"
)

// Service invocation over gRPC (InvokeService, which daprd deprecates in
// favour of proxying but every SDK still calls) goes through package api in
// HTTP terms, as daprd's does: the request's HTTPExtension gives the verb
// and query string, its Data the body, its content type the Content-Type;
// the caller's gRPC metadata becomes request headers. The app's answer
// comes back as the response's Data and content type, its headers as
// response headers plus dapr-http-status; a status outside 2xx is a gRPC
// error, as in daprd.

// protobufContentType is the content type daprd gives a body sent as a
// typed Any.
const protobufContentType = "application/x-protobuf"

// httpStatusHeader is the response header carrying the app's HTTP status.
const httpStatusHeader = "dapr-http-status"

// maxErrorDetail bounds the part of the app's error body daprd copies into
// the ErrorInfo ("http.error_message").
const maxErrorDetail = 63

func (s *service) InvokeService(ctx context.Context, in *runtimev1pb.InvokeServiceRequest) (*commonv1pb.InvokeResponse, error) {
	msg := in.GetMessage()
	ext := msg.GetHttpExtension()
	verb := ext.GetVerb() // NONE without an extension
	if (verb == commonv1pb.HTTPExtension_NONE || verb == commonv1pb.HTTPExtension_CONNECT) && s.httpApp(in.GetId()) {
		// daprd's HTTP app channel refuses these before calling the app;
		// a gRPC app takes them (SDKs send NONE to gRPC apps).
		why := "invalid HTTP verb"
		if ext == nil {
			why = "missing HTTP extension field"
		}
		return nil, invokeError(in.GetId(), codes.InvalidArgument, why)
	}
	method, err := normalizeMethod(msg.GetMethod())
	if err != nil {
		return nil, invokeError(in.GetId(), codes.InvalidArgument, "invalid method: "+err.Error())
	}
	md, _ := metadata.FromIncomingContext(ctx)
	res, err := s.api.Invoke(ctx, &api.InvokeRequest{
		AppID:   in.GetId(),
		Verb:    verb.String(),
		Method:  method,
		Query:   ext.GetQuerystring(),
		Headers: invokeHeaders(md, msg),
		Body:    msg.GetData().GetValue(),
	})
	if err != nil {
		return nil, statusError(err)
	}
	_ = grpc.SetHeader(ctx, responseHeader(res))
	body := res.KeepBody() // gRPC marshals the answer after this returns
	if err := httpStatusError(res.Status, body); err != nil {
		return nil, err
	}
	return &commonv1pb.InvokeResponse{Data: &anypb.Any{Value: body}, ContentType: headerValue(res.Headers, "content-type")}, nil
}

// httpApp reports whether appID is this sidecar's own app and it is
// called over HTTP. The protocol of another sidecar's app is not known
// here; that sidecar's app channel decides.
func (s *service) httpApp(appID string) bool {
	if i := strings.LastIndexByte(appID, '.'); i >= 0 {
		appID = appID[:i]
	}
	if appID != s.api.AppID() {
		return false
	}
	c := s.api.Metadata().AppConnectionProperties
	return c != nil && !strings.HasPrefix(c.Protocol, "grpc")
}

// invokeError is daprd's answer to an invocation it refused: Internal
// ERR_DIRECT_INVOKE, the message quoting the inner status.
func invokeError(appID string, inner codes.Code, msg string) error {
	return statusError(&api.Error{
		Code:    api.CodeDirectInvoke,
		Message: fmt.Sprintf("failed to invoke, id: %s, err: %v", appID, status.Error(inner, msg)),
	})
}

// normalizeMethod checks and cleans a method name as daprd does before any
// call: no '#', '?', NUL or control character, "../" resolved (and never
// above the root), no leading slash. It returns the method as daprd's URL
// to the app has it: escaped where needed, escapes the caller wrote kept.
func normalizeMethod(m string) (string, error) {
	if strings.ContainsAny(m, "#?\x00") {
		return "", fmt.Errorf("method contains forbidden character: %q", m)
	}
	for i := 0; i < len(m); i++ {
		if m[i] < 0x20 || m[i] == 0x7f {
			return "", fmt.Errorf("method contains control character at position %d: %q", i, m)
		}
	}
	// Cleaning from the root resolves every "..", none escaping it.
	u, err := url.Parse(path.Clean("/" + m))
	if err != nil {
		return "", err
	}
	return strings.TrimPrefix(u.EscapedPath(), "/"), nil
}

// invokeHeaders turns the caller's gRPC metadata into the request headers
// daprd sends the app: binary (-bin) entries, content-type and
// content-length are dropped, reserved names (":authority", "grpc-…")
// take a "dapr-" prefix; the request's own content type is added. The api
// layer drops the rest of what must not travel (dapr-api-token, hop-by-hop
// headers).
func invokeHeaders(md metadata.MD, msg *commonv1pb.InvokeRequest) []api.Header {
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]api.Header, 0, len(md)+1)
	for _, k := range keys {
		if strings.HasSuffix(k, "-bin") || k == "content-type" || k == "content-length" {
			continue
		}
		name := k
		switch {
		case strings.HasPrefix(k, ":"):
			name = "dapr-" + k[1:]
		case strings.HasPrefix(k, "grpc-"):
			name = "dapr-" + k
		}
		for _, v := range md[k] {
			out = append(out, api.Header{Key: name, Value: v})
		}
	}
	ct := msg.GetContentType()
	if msg.GetData().GetTypeUrl() != "" {
		ct = protobufContentType
	}
	if ct != "" {
		out = append(out, api.Header{Key: "content-type", Value: ct})
	}
	return out
}

// permanentHeaders are the IANA permanent header names daprd prefixes with
// "dapr-" when it returns an app's HTTP headers as gRPC metadata, where
// some of them (content-type above all) mean something else.
var permanentHeaders = map[string]bool{
	"accept": true, "accept-charset": true, "accept-language": true, "accept-ranges": true,
	"connection": true, "keep-alive": true, "proxy-connection": true, "transfer-encoding": true,
	"upgrade": true, "cache-control": true, "content-type": true, "content-length": true,
	"cookie": true, "date": true, "expect": true, "from": true, "host": true, "if-match": true,
	"if-modified-since": true, "if-none-match": true, "if-schedule-tag-match": true,
	"if-unmodified-since": true, "max-forwards": true, "origin": true, "pragma": true,
	"referer": true, "via": true, "warning": true,
}

// responseHeader returns the app's response headers as gRPC metadata, with
// the app's status in dapr-http-status. Names gRPC metadata cannot carry
// are left out.
func responseHeader(res *api.InvokeResponse) metadata.MD {
	md := make(metadata.MD, len(res.Headers)+1)
	for _, h := range res.Headers {
		k := strings.ToLower(h.Key)
		if permanentHeaders[k] {
			k = "dapr-" + k
		}
		if validKey(k) {
			md.Append(k, h.Value)
		}
	}
	md.Set(httpStatusHeader, strconv.Itoa(res.Status))
	return md
}

// validKey reports whether k (lower-case) may name gRPC metadata.
func validKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func headerValue(hs []api.Header, name string) string {
	for _, h := range hs {
		if strings.EqualFold(h.Key, name) {
			return h.Value
		}
	}
	return ""
}

// httpStatusError is daprd's gRPC error for an app's HTTP status outside
// 2xx (nil within): the code of codeFromHTTPStatus, the status text as
// message and ErrorInfo reason, and the status and the start of the body in
// the ErrorInfo's metadata.
func httpStatusError(code int, body []byte) error {
	c := codeFromHTTPStatus(code)
	if c == codes.OK {
		return nil
	}
	text := http.StatusText(code)
	if len(body) > maxErrorDetail {
		body = body[:maxErrorDetail]
	}
	// A rune cut in two would be invalid UTF-8, which protobuf refuses.
	detail := strings.ToValidUTF8(string(body), "")
	st := status.New(c, text)
	if d, err := st.WithDetails(&errdetails.ErrorInfo{
		Reason: text, Domain: errorDomain,
		Metadata: map[string]string{"http.code": strconv.Itoa(code), "http.error_message": detail},
	}); err == nil {
		st = d
	}
	return st.Err()
}

// codeFromHTTPStatus is daprd's mapping of an app's HTTP status to a gRPC
// code: OK for 2xx, a few statuses to their gRPC counterpart, Unknown for
// every other (3xx included).
func codeFromHTTPStatus(code int) codes.Code {
	if code >= 200 && code < 300 {
		return codes.OK
	}
	switch code {
	case http.StatusRequestTimeout:
		return codes.Canceled
	case http.StatusBadRequest:
		return codes.Internal
	case http.StatusGatewayTimeout:
		return codes.DeadlineExceeded
	case http.StatusNotFound:
		return codes.NotFound
	case http.StatusConflict:
		return codes.AlreadyExists
	case http.StatusForbidden:
		return codes.PermissionDenied
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusTooManyRequests:
		return codes.ResourceExhausted
	case http.StatusNotImplemented:
		return codes.Unimplemented
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	}
	return codes.Unknown
}
