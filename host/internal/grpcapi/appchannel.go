package grpcapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	commonv1pb "github.com/dapr/dapr/pkg/proto/common/v1"
	runtimev1pb "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/wapr-dev/wapr/host/internal/api"
)

// AppChannel calls an app that serves dapr.proto.runtime.v1.AppCallback
// (--app-protocol grpc), the way daprd does, and answers in the shape the
// HTTP app channel does, so delivery and invocation read both alike: each
// api.AppCall becomes the matching RPC (see Call). It is safe for
// concurrent use.
type AppChannel struct {
	addr     string
	appID    string
	appToken string
	conn     *grpc.ClientConn
	connErr  error
	client   runtimev1pb.AppCallbackClient

	mu       sync.Mutex
	bindings []string // the app's ListInputBindings answer, once read
	listed   bool
}

var _ api.AppChannel = (*AppChannel)(nil)

const (
	// appCallTimeout bounds a call to the app whose context has no
	// deadline, as the HTTP app channel does.
	appCallTimeout = 60 * time.Second
	// appMaxMessageSize bounds the messages exchanged with the app, as the
	// HTTP app channel bounds response bodies.
	appMaxMessageSize = 64 << 20
	// appProtobufContentType is what daprd reports for an answer whose data
	// carries a type URL.
	appProtobufContentType = "application/x-protobuf"
)

// NewAppChannel returns a channel to the app listening on addr (host:port).
// Nothing connects until the first call; appToken, when set, is sent as
// dapr-api-token metadata on every call (APP_API_TOKEN). appID names the app
// in errors: daprd sends no dapr-app-id to gRPC apps, so neither does this.
func NewAppChannel(addr, appID, appToken string) *AppChannel {
	c := &AppChannel{addr: addr, appID: appID, appToken: appToken}
	c.conn, c.connErr = grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(appMaxMessageSize), grpc.MaxCallSendMsgSize(appMaxMessageSize)),
	)
	if c.connErr == nil {
		c.client = runtimev1pb.NewAppCallbackClient(c.conn)
	}
	return c
}

// Close closes the connection; calls after it fail. A second Close does
// nothing.
func (c *AppChannel) Close() {
	if c.conn != nil {
		c.conn.Close()
	}
}

// Call makes the AppCallback call req.Call names:
//
//   - AppCallSubscriptions: ListTopicSubscriptions, answered as the JSON
//     list GET /dapr/subscribe returns (Unimplemented: none, as daprd).
//   - AppCallTopicEvent: OnTopicEvent with the CloudEvent in req.Body taken
//     apart as daprd does; the status comes back as {"status":…}. An
//     Unimplemented error answers 404 (daprd drops the message); any other
//     error is an error (the message is retried).
//   - AppCallBindingProbe: 200 when ListInputBindings (read once) names
//     req.Binding, else 404.
//   - AppCallBindingEvent: OnBindingEvent; 200 with the app's data, or an
//     error.
//   - AppCallInvoke and AppCallConfigurationUpdate: OnInvoke; 200 with the
//     app's data, or the app's gRPC error as daprd shows it to HTTP callers
//     (HTTP status from the code, the status as JSON).
func (c *AppChannel) Call(ctx context.Context, req *api.AppRequest) (*api.AppResponse, error) {
	if c.connErr != nil {
		return nil, fmt.Errorf("connecting to the app at %s: %w", c.addr, c.connErr)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, appCallTimeout)
		defer cancel()
	}
	switch req.Call {
	case api.AppCallSubscriptions:
		return c.subscriptions(c.outgoing(ctx, nil))
	case api.AppCallTopicEvent:
		return c.topicEvent(ctx, req)
	case api.AppCallBindingProbe:
		return c.bindingProbe(c.outgoing(ctx, nil), req.Binding)
	case api.AppCallBindingEvent:
		return c.bindingEvent(c.outgoing(ctx, nil), req)
	case api.AppCallInvoke:
		return c.invoke(ctx, req, false)
	case api.AppCallConfigurationUpdate:
		// daprd sends configuration updates to a gRPC app through OnInvoke,
		// with method "/configuration/<store>/<key>" (leading slash kept).
		return c.invoke(ctx, req, true)
	}
	return nil, fmt.Errorf("calling the app at %s: unknown kind of call %d", c.addr, req.Call)
}

// outgoing returns ctx carrying md and the app token.
func (c *AppChannel) outgoing(ctx context.Context, md metadata.MD) context.Context {
	if md == nil {
		md = metadata.MD{}
	}
	if c.appToken != "" {
		md.Set("dapr-api-token", c.appToken)
	}
	return metadata.NewOutgoingContext(ctx, md)
}

func (c *AppChannel) callError(rpc string, err error) error {
	return fmt.Errorf("calling %s of app %s at %s: %w", rpc, c.appID, c.addr, err)
}

// appTopicSubscription is one element of GET /dapr/subscribe's answer, the
// shape package delivery reads.
type appTopicSubscription struct {
	PubSubName      string            `json:"pubsubname"`
	Topic           string            `json:"topic"`
	Route           string            `json:"route,omitempty"`
	Routes          *appTopicRoutes   `json:"routes,omitempty"`
	Metadata        map[string]string `json:"metadata,omitempty"`
	DeadLetterTopic string            `json:"deadLetterTopic,omitempty"`
}

type appTopicRoutes struct {
	Rules   []appTopicRule `json:"rules,omitempty"`
	Default string         `json:"default,omitempty"`
}

type appTopicRule struct {
	Match string `json:"match"`
	Path  string `json:"path"`
}

// appRootPath stands for the empty path: daprd routes a gRPC subscription
// without routes to path "", which package delivery, made for HTTP paths,
// writes as "/"; topicEvent turns it back.
const appRootPath = "/"

func (c *AppChannel) subscriptions(ctx context.Context) (*api.AppResponse, error) {
	res, err := c.client.ListTopicSubscriptions(ctx, &emptypb.Empty{})
	if status.Code(err) == codes.Unimplemented {
		return &api.AppResponse{Status: http.StatusNotFound}, nil
	}
	if err != nil {
		return nil, c.callError("ListTopicSubscriptions", err)
	}
	list := make([]appTopicSubscription, 0, len(res.GetSubscriptions()))
	for _, s := range res.GetSubscriptions() {
		sub := appTopicSubscription{
			PubSubName: s.GetPubsubName(), Topic: s.GetTopic(),
			Metadata: s.GetMetadata(), DeadLetterTopic: s.GetDeadLetterTopic(),
		}
		r := s.GetRoutes()
		if len(r.GetRules()) == 0 && r.GetDefault() == "" {
			sub.Route = appRootPath
		} else {
			sub.Routes = &appTopicRoutes{Default: r.GetDefault()}
			for _, rule := range r.GetRules() {
				sub.Routes.Rules = append(sub.Routes.Rules, appTopicRule{Match: rule.GetMatch(), Path: rule.GetPath()})
			}
		}
		list = append(list, sub)
	}
	body, err := json.Marshal(list)
	if err != nil {
		return nil, err
	}
	return &api.AppResponse{Status: http.StatusOK, ContentType: "application/json", Body: body}, nil
}

// Answers to a topic event in the shape package delivery reads.
var (
	appTopicSuccess = []byte(`{"status":"SUCCESS"}`)
	appTopicRetry   = []byte(`{"status":"RETRY"}`)
	appTopicDrop    = []byte(`{"status":"DROP"}`)
)

func (c *AppChannel) topicEvent(ctx context.Context, req *api.AppRequest) (*api.AppResponse, error) {
	path := req.Path
	if path == appRootPath {
		path = ""
	}
	in, err := topicEventRequest(req, path)
	if err != nil {
		return nil, fmt.Errorf("delivering a message of topic %s on pubsub %s: %w", req.Topic, req.PubSub, err)
	}
	// The message's metadata travels as gRPC metadata, as daprd sends it.
	md := metadata.MD{}
	for k, v := range req.Headers {
		if k = strings.ToLower(k); k != "content-type" && k != "content-length" {
			appMetadataAppend(md, k, v)
		}
	}
	res, err := c.client.OnTopicEvent(c.outgoing(ctx, md), in)
	if err != nil {
		if status.Code(err) == codes.Unimplemented {
			// daprd: not retriable, the message is dropped.
			return &api.AppResponse{Status: http.StatusNotFound, ContentType: "application/json", Body: appStatusJSON(err)}, nil
		}
		return nil, c.callError("OnTopicEvent", err)
	}
	body := appTopicRetry // an unknown status is retried, as daprd does
	switch res.GetStatus() {
	case runtimev1pb.TopicEventResponse_SUCCESS:
		body = appTopicSuccess
	case runtimev1pb.TopicEventResponse_DROP:
		body = appTopicDrop
	}
	return &api.AppResponse{Status: http.StatusOK, ContentType: "application/json", Body: body}, nil
}

// bindingProbe answers whether the app takes events of binding: daprd asks
// ListInputBindings once and keeps the list. An app that does not implement
// it takes none.
func (c *AppChannel) bindingProbe(ctx context.Context, binding string) (*api.AppResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.listed {
		res, err := c.client.ListInputBindings(ctx, &emptypb.Empty{})
		if err != nil && status.Code(err) != codes.Unimplemented {
			// Not kept: the next probe asks again.
			return nil, c.callError("ListInputBindings", err)
		}
		c.bindings, c.listed = res.GetBindings(), true
	}
	if slices.Contains(c.bindings, binding) {
		return &api.AppResponse{Status: http.StatusOK}, nil
	}
	return &api.AppResponse{Status: http.StatusNotFound}, nil
}

// bindingEvent delivers an input binding's event. daprd also acts on the
// answer's to, states and concurrency; those are not supported here.
func (c *AppChannel) bindingEvent(ctx context.Context, req *api.AppRequest) (*api.AppResponse, error) {
	res, err := c.client.OnBindingEvent(ctx, &runtimev1pb.BindingEventRequest{
		Name: req.Binding, Data: req.Body, Metadata: req.Headers,
	})
	if err != nil {
		return nil, c.callError("OnBindingEvent", err)
	}
	return &api.AppResponse{Status: http.StatusOK, Body: res.GetData()}, nil
}

// appPermanentHTTPHeaders are the headers daprd renames dapr-<name> when it
// turns an HTTP request into gRPC metadata (IANA's permanent request
// headers), lower case.
var appPermanentHTTPHeaders = []string{
	"accept", "accept-charset", "accept-language", "accept-ranges", "connection",
	"keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "cache-control",
	"content-type", "content-length", "cookie", "date", "expect", "from", "host",
	"if-match", "if-modified-since", "if-none-match", "if-schedule-tag-match",
	"if-unmodified-since", "max-forwards", "origin", "pragma", "referer", "via", "warning",
}

// appInvokeMetadata turns an invocation's headers into gRPC metadata as daprd
// does: names lower-cased, permanent HTTP headers renamed dapr-<name>,
// -bin values base64-decoded; grpc-trace-bin is not passed on.
func appInvokeMetadata(req *api.AppRequest) metadata.MD {
	md := metadata.MD{}
	add := func(k, v string) {
		k = strings.ToLower(k)
		switch {
		case k == "grpc-trace-bin" || k == "dapr-api-token":
			return
		case slices.Contains(appPermanentHTTPHeaders, k):
			k = "dapr-" + k
		case strings.HasSuffix(k, "-bin"):
			b, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				return
			}
			v = string(b)
		}
		appMetadataAppend(md, k, v)
	}
	for k, v := range req.Headers {
		add(k, v)
	}
	for _, h := range req.Header {
		add(h.Key, h.Value)
	}
	return md
}

// appMetadataAppend adds k: v to md when gRPC can send it (a name of
// [0-9a-z-_.], a printable ASCII value unless a -bin one, not a name gRPC
// reserves); gRPC fails the whole call on one bad pair, daprd's HTTP
// headers cannot have most of them.
func appMetadataAppend(md metadata.MD, k, v string) {
	if k == "" || k == "te" || k == "content-type" || strings.HasPrefix(k, "grpc-") {
		return
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return
		}
	}
	if !strings.HasSuffix(k, "-bin") {
		for i := 0; i < len(v); i++ {
			if v[i] < 0x20 || v[i] > 0x7e {
				return
			}
		}
	}
	md.Append(k, v)
}

// invoke calls OnInvoke. For an invocation the method is the path without
// its leading slash, unescaped (daprd takes it from the decoded URL path);
// a configuration update keeps the slash, as daprd sends it.
func (c *AppChannel) invoke(ctx context.Context, req *api.AppRequest, keepSlash bool) (*api.AppResponse, error) {
	method := req.Path
	if u, err := url.PathUnescape(method); err == nil {
		method = u
	}
	if !keepSlash {
		method = strings.TrimPrefix(method, "/")
	}
	contentType := req.ContentType
	if contentType == "" {
		contentType = appHeaderValue(req, "content-type")
	}
	verb, ok := commonv1pb.HTTPExtension_Verb_value[strings.ToUpper(req.Method)]
	if !ok {
		verb = int32(commonv1pb.HTTPExtension_POST)
	}
	in := &commonv1pb.InvokeRequest{
		Method:      method,
		Data:        &anypb.Any{Value: req.Body},
		ContentType: contentType,
		HttpExtension: &commonv1pb.HTTPExtension{
			Verb: commonv1pb.HTTPExtension_Verb(verb), Querystring: req.Query,
		},
	}
	var header metadata.MD
	res, err := c.client.OnInvoke(c.outgoing(ctx, appInvokeMetadata(req)), in, grpc.Header(&header))
	out := &api.AppResponse{Status: http.StatusOK, ContentType: res.GetContentType(), Body: res.GetData().GetValue()}
	if res.GetData().GetTypeUrl() != "" {
		out.ContentType = appProtobufContentType
	}
	if err != nil {
		// As daprd answers an HTTP caller of a gRPC app: the HTTP status
		// for the code, the status itself as JSON.
		out.Status = appHTTPStatus(status.Code(err))
		out.ContentType = "application/json"
		out.Body = appStatusJSON(err)
	}
	if req.ResponseHeaders {
		// The content type travels as a header, as from an HTTP app.
		out.Header = appResponseHeaders(header)
		if out.ContentType != "" {
			out.Header = append(out.Header, api.Header{Key: "Content-Type", Value: out.ContentType})
		}
	}
	return out, nil
}

func appHeaderValue(req *api.AppRequest, name string) string {
	for k, v := range req.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	for _, h := range req.Header {
		if strings.EqualFold(h.Key, name) {
			return h.Value
		}
	}
	return ""
}

// appResponseHeaders turns the app's response metadata into HTTP headers as
// daprd does: binary, content-type and content-length entries dropped,
// grpc- names prefixed dapr-.
func appResponseHeaders(md metadata.MD) []api.Header {
	var out []api.Header
	for k, vs := range md {
		if strings.HasSuffix(k, "-bin") || k == "content-type" || k == "content-length" {
			continue
		}
		if strings.HasPrefix(k, "grpc-") {
			k = "dapr-" + k
		}
		for _, v := range vs {
			out = append(out, api.Header{Key: k, Value: v})
		}
	}
	return api.ResponseHeaders(out)
}

// appStatusJSON is err's gRPC status as daprd writes it for an HTTP caller.
func appStatusJSON(err error) []byte {
	b, merr := protojson.Marshal(status.Convert(err).Proto())
	if merr != nil {
		b, _ = json.Marshal(map[string]any{"code": status.Code(err), "message": status.Convert(err).Message()})
	}
	return b
}

// appHTTPStatus is the HTTP status daprd answers for a gRPC code.
func appHTTPStatus(c codes.Code) int {
	switch c {
	case codes.OK:
		return http.StatusOK
	case codes.Canceled:
		return http.StatusRequestTimeout
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted:
		return http.StatusConflict
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Unimplemented:
		return http.StatusNotImplemented
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
