package internalsgrpc

import (
	"errors"
	"net/url"
	"slices"
	"strings"

	commonv1pb "github.com/dapr/dapr/pkg/proto/common/v1"
	internalv1pb "github.com/dapr/dapr/pkg/proto/internals/v1"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/wapr-dev/wapr/host/internal/api"
)

// Metadata keys daprd sets on a call (pkg/messaging/v1's names).
const (
	callerAppIDKey     = "dapr-caller-app-id"
	callerNamespaceKey = "dapr-caller-namespace"
	calleeAppIDKey     = "dapr-callee-app-id"
	destinationIDKey   = "destination-app-id"
	// remoteKey marks, on daprd, an actor call another daprd forwarded; its
	// CallActor server adds it itself, so one arriving here is dropped.
	remoteKey = "X-Dapr-Remote"
)

var errNoMessage = errors.New("the request has no message")

// invokeRequestOf turns daprd's request into wapr's, and names the app id
// it is meant for (the callee metadata, else empty). Headers are the
// request's metadata, sorted by key so that the app sees them in a stable
// order, minus what daprd also drops before the app (content-length,
// destination-app-id, binary gRPC metadata) and wapr's own actor marker,
// which only wapr's wire may carry; the content type is Message's.
func invokeRequestOf(in *internalv1pb.InternalInvokeRequest) (req *api.InvokeRequest, callee string, err error) {
	msg := in.GetMessage()
	if msg == nil {
		return nil, "", errNoMessage
	}
	req = &api.InvokeRequest{Method: strings.TrimPrefix(msg.GetMethod(), "/"), Verb: "POST"}
	if ext := msg.GetHttpExtension(); ext != nil {
		if v := ext.GetVerb(); v != commonv1pb.HTTPExtension_NONE {
			req.Verb = v.String()
		}
		req.Query = ext.GetQuerystring()
	}
	md := in.GetMetadata()
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	req.Headers = make([]api.Header, 0, len(md)+1)
	for _, k := range keys {
		vals := md[k].GetValues()
		if len(vals) == 0 {
			continue
		}
		switch lk := strings.ToLower(k); {
		case lk == callerAppIDKey:
			req.CallerAppID = vals[0]
			continue
		case lk == callerNamespaceKey:
			req.CallerNamespace = vals[0]
			continue
		case lk == calleeAppIDKey:
			callee = vals[0]
			continue
		case lk == "content-type", lk == "content-length", lk == destinationIDKey,
			strings.EqualFold(k, remoteKey), lk == api.ActorCallHeader, strings.HasSuffix(lk, "-bin"):
			continue
		}
		for _, v := range vals {
			req.Headers = append(req.Headers, api.Header{Key: k, Value: v})
		}
	}
	if ct := msg.GetContentType(); ct != "" {
		req.Headers = append(req.Headers, api.Header{Key: "Content-Type", Value: ct})
	}
	req.Body = msg.GetData().GetValue()
	return req, callee, nil
}

// responseOf turns the app's answer into daprd's, as daprd's own app
// channel builds it: the content type goes to Message, not the headers.
func responseOf(res *api.InvokeResponse) *internalv1pb.InternalInvokeResponse {
	out := &internalv1pb.InternalInvokeResponse{
		Status:  &internalv1pb.Status{Code: int32(res.Status)},
		Headers: map[string]*internalv1pb.ListStringValue{},
		Message: &commonv1pb.InvokeResponse{Data: &anypb.Any{Value: res.KeepBody()}},
	}
	for _, h := range res.Headers {
		if strings.EqualFold(h.Key, "content-type") {
			out.Message.ContentType = h.Value
			continue
		}
		addMetadata(out.Headers, h.Key, h.Value)
	}
	return out
}

func addMetadata(md map[string]*internalv1pb.ListStringValue, k, v string) {
	if l := md[k]; l != nil {
		l.Values = append(l.Values, v)
		return
	}
	md[k] = &internalv1pb.ListStringValue{Values: []string{v}}
}

// requestOf turns wapr's request into daprd's, as daprd's own caller builds
// it: every header as metadata (the content type also as Message's), the
// caller's and callee's ids, and for an actor call (req carries
// api.ActorCallHeader) the actor, without the marker.
func requestOf(req *api.InvokeRequest) (out *internalv1pb.InternalInvokeRequest, actor bool, err error) {
	out = internalv1pb.NewInternalInvokeRequest(req.Method).
		WithHTTPExtension(req.Verb, req.Query).
		WithData(req.Body)
	out.Metadata = make(map[string]*internalv1pb.ListStringValue, len(req.Headers)+3)
	for _, h := range req.Headers {
		if strings.EqualFold(h.Key, api.ActorCallHeader) {
			t, id, ok := strings.Cut(h.Value, "/")
			if ok {
				var err1, err2 error
				t, err1 = url.PathUnescape(t)
				id, err2 = url.PathUnescape(id)
				ok = err1 == nil && err2 == nil
			}
			if !ok {
				return nil, false, errors.New("malformed actor call header " + h.Value)
			}
			out.WithActor(t, id)
			actor = true
			continue
		}
		if strings.EqualFold(h.Key, "content-type") {
			out.Message.ContentType = h.Value
		}
		addMetadata(out.Metadata, h.Key, h.Value)
	}
	if req.CallerAppID != "" {
		addMetadata(out.Metadata, callerAppIDKey, req.CallerAppID)
	}
	if req.CallerNamespace != "" {
		addMetadata(out.Metadata, callerNamespaceKey, req.CallerNamespace)
	}
	if !actor && req.AppID != "" {
		id, _, _ := strings.Cut(req.AppID, ".")
		addMetadata(out.Metadata, calleeAppIDKey, id)
	}
	return out, actor, nil
}

// invokeResponseOf turns daprd's answer into wapr's. An answer whose status
// is a gRPC code (< 100: a gRPC app behind daprd) becomes its HTTP status,
// as daprd's HTTP API does.
func invokeResponseOf(in *internalv1pb.InternalInvokeResponse) *api.InvokeResponse {
	res := &api.InvokeResponse{Status: int(in.GetStatus().GetCode()), Body: in.GetMessage().GetData().GetValue()}
	if !in.IsHTTPResponse() {
		res.Status = httpStatusOfGRPC(res.Status)
	}
	keys := make([]string, 0, len(in.GetHeaders()))
	for k := range in.GetHeaders() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	hasType := false
	for _, k := range keys {
		if strings.HasSuffix(strings.ToLower(k), "-bin") {
			continue
		}
		if strings.EqualFold(k, "content-type") {
			hasType = true
		}
		for _, v := range in.GetHeaders()[k].GetValues() {
			res.Headers = append(res.Headers, api.Header{Key: k, Value: v})
		}
	}
	if ct := in.GetMessage().GetContentType(); ct != "" && !hasType {
		res.Headers = append(res.Headers, api.Header{Key: "Content-Type", Value: ct})
	}
	res.Headers = api.ResponseHeaders(res.Headers)
	return res
}

// httpStatusOfGRPC maps a gRPC code to an HTTP status as daprd's
// invokev1.HTTPStatusFromCode does (the same table gRPC-gateway uses).
func httpStatusOfGRPC(code int) int {
	switch code {
	case 0:
		return 200
	case 1:
		return 499
	case 3, 9, 11:
		return 400
	case 4:
		return 504
	case 5:
		return 404
	case 6, 10:
		return 409
	case 7:
		return 403
	case 8:
		return 429
	case 12:
		return 501
	case 14:
		return 503
	case 16:
		return 401
	default:
		return 500
	}
}
