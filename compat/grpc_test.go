package compat_test

import (
	"context"
	"testing"

	commonv1pb "github.com/dapr/dapr/pkg/proto/common/v1"
	runtimev1pb "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// client returns a client of the sidecar's gRPC API, Dapr's generated one.
func (s *sidecar) client(t testing.TB) runtimev1pb.DaprClient {
	t.Helper()
	conn, err := grpc.NewClient(s.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return runtimev1pb.NewDaprClient(conn)
}

// rpc is one row of a gRPC table: a call and the code and ErrorInfo reason
// it must fail with (the reason is the HTTP API's errorCode, docs/api.md).
type rpc struct {
	name   string
	call   func(ctx context.Context, c runtimev1pb.DaprClient) error
	code   codes.Code
	reason string
}

func (s *sidecar) checkRPC(t *testing.T, rows []rpc) {
	t.Helper()
	c := s.client(t)
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			err := r.call(t.Context(), c)
			st, _ := status.FromError(err)
			if st.Code() != r.code {
				t.Fatalf("code %v (%v), want %v", st.Code(), err, r.code)
			}
			if r.reason == "" {
				return
			}
			var reason, domain string
			for _, d := range st.Details() {
				if info, ok := d.(*errdetails.ErrorInfo); ok {
					reason, domain = info.Reason, info.Domain
				}
			}
			if reason != r.reason || domain != "dapr.io" {
				t.Errorf("ErrorInfo reason %q domain %q, want %q in dapr.io (%v)", reason, domain, r.reason, err)
			}
		})
	}
}

func ignore[T any](_ T, err error) error { return err }

// TestGRPCErrors: the gRPC side of the HTTP errors above, with daprd's
// codes.
func TestGRPCErrors(t *testing.T) {
	s := start(t, options{resources: fullResources, config: secretScopes})
	etag := func(v string) *commonv1pb.Etag { return &commonv1pb.Etag{Value: v} }
	s.checkRPC(t, []rpc{
		{"save", func(ctx context.Context, c runtimev1pb.DaprClient) error {
			return ignore(c.SaveState(ctx, &runtimev1pb.SaveStateRequest{StoreName: "statestore", States: []*commonv1pb.StateItem{{Key: "k", Value: []byte("1")}}}))
		}, codes.OK, ""},
		{"unknown state store", func(ctx context.Context, c runtimev1pb.DaprClient) error {
			return ignore(c.GetState(ctx, &runtimev1pb.GetStateRequest{StoreName: "nostore", Key: "k"}))
		}, codes.InvalidArgument, "ERR_STATE_STORE_NOT_FOUND"},
		{"etag mismatch", func(ctx context.Context, c runtimev1pb.DaprClient) error {
			return ignore(c.SaveState(ctx, &runtimev1pb.SaveStateRequest{StoreName: "statestore", States: []*commonv1pb.StateItem{{Key: "k", Value: []byte("2"), Etag: etag("999999")}}}))
		}, codes.Aborted, "ERR_STATE_SAVE"},
		{"malformed etag", func(ctx context.Context, c runtimev1pb.DaprClient) error {
			return ignore(c.SaveState(ctx, &runtimev1pb.SaveStateRequest{StoreName: "statestore", States: []*commonv1pb.StateItem{{Key: "k", Value: []byte("2"), Etag: etag("bad")}}}))
		}, codes.InvalidArgument, "ERR_STATE_SAVE"},
		{"delete etag mismatch", func(ctx context.Context, c runtimev1pb.DaprClient) error {
			return ignore(c.DeleteState(ctx, &runtimev1pb.DeleteStateRequest{StoreName: "statestore", Key: "k", Etag: etag("999999")}))
		}, codes.Aborted, "ERR_STATE_DELETE"},
		{"key with ||", func(ctx context.Context, c runtimev1pb.DaprClient) error {
			return ignore(c.GetState(ctx, &runtimev1pb.GetStateRequest{StoreName: "statestore", Key: "a||b"}))
		}, codes.InvalidArgument, "ERR_MALFORMED_REQUEST"},
		{"store fails get", func(ctx context.Context, c runtimev1pb.DaprClient) error {
			return ignore(c.GetState(ctx, &runtimev1pb.GetStateRequest{StoreName: "brokenstore", Key: "k"}))
		}, codes.Internal, "ERR_STATE_GET"},
		{"transaction on a store that is not transactional", func(ctx context.Context, c runtimev1pb.DaprClient) error {
			return ignore(c.ExecuteStateTransaction(ctx, &runtimev1pb.ExecuteStateTransactionRequest{StoreName: "plainstore", Operations: []*runtimev1pb.TransactionalStateOperation{
				{OperationType: "upsert", Request: &commonv1pb.StateItem{Key: "t", Value: []byte("1")}},
			}}))
		}, codes.Unimplemented, "ERR_STATE_STORE_NOT_SUPPORTED"},
		{"transaction etag conflict", func(ctx context.Context, c runtimev1pb.DaprClient) error {
			return ignore(c.ExecuteStateTransaction(ctx, &runtimev1pb.ExecuteStateTransactionRequest{StoreName: "statestore", Operations: []*runtimev1pb.TransactionalStateOperation{
				{OperationType: "upsert", Request: &commonv1pb.StateItem{Key: "t", Value: []byte("1"), Etag: etag("999999")}},
			}}))
		}, codes.Internal, "ERR_STATE_TRANSACTION"},
		{"unknown pubsub", func(ctx context.Context, c runtimev1pb.DaprClient) error {
			return ignore(c.PublishEvent(ctx, &runtimev1pb.PublishEventRequest{PubsubName: "nopubsub", Topic: "orders", Data: []byte("{}"), DataContentType: "application/json"}))
		}, codes.InvalidArgument, "ERR_PUBSUB_NOT_FOUND"},
		{"empty pubsub name", func(ctx context.Context, c runtimev1pb.DaprClient) error {
			return ignore(c.PublishEvent(ctx, &runtimev1pb.PublishEventRequest{Topic: "orders", Data: []byte("{}")}))
		}, codes.InvalidArgument, "ERR_PUBSUB_EMPTY"},
		{"empty topic", func(ctx context.Context, c runtimev1pb.DaprClient) error {
			return ignore(c.PublishEvent(ctx, &runtimev1pb.PublishEventRequest{PubsubName: "pubsub", Data: []byte("{}")}))
		}, codes.InvalidArgument, "ERR_TOPIC_NAME_EMPTY"},
		{"broker refuses", func(ctx context.Context, c runtimev1pb.DaprClient) error {
			return ignore(c.PublishEvent(ctx, &runtimev1pb.PublishEventRequest{PubsubName: "brokenpubsub", Topic: "orders", Data: []byte("{}"), DataContentType: "application/json"}))
		}, codes.Internal, "ERR_PUBSUB_PUBLISH_MESSAGE"},
		{"unknown binding", func(ctx context.Context, c runtimev1pb.DaprClient) error {
			return ignore(c.InvokeBinding(ctx, &runtimev1pb.InvokeBindingRequest{Name: "nobinding", Operation: "create"}))
		}, codes.Internal, "ERR_INVOKE_OUTPUT_BINDING"},
		{"unknown secret store", func(ctx context.Context, c runtimev1pb.DaprClient) error {
			return ignore(c.GetSecret(ctx, &runtimev1pb.GetSecretRequest{StoreName: "nostore", Key: "visible"}))
		}, codes.InvalidArgument, "ERR_SECRET_STORE_NOT_FOUND"},
		{"secret refused by the scopes", func(ctx context.Context, c runtimev1pb.DaprClient) error {
			return ignore(c.GetSecret(ctx, &runtimev1pb.GetSecretRequest{StoreName: "secretstore", Key: "hidden"}))
		}, codes.PermissionDenied, "ERR_PERMISSION_DENIED"},
		{"no such secret", func(ctx context.Context, c runtimev1pb.DaprClient) error {
			return ignore(c.GetSecret(ctx, &runtimev1pb.GetSecretRequest{StoreName: "secretstore", Key: "nope"}))
		}, codes.Internal, "ERR_SECRET_GET"},
		{"unknown configuration store", func(ctx context.Context, c runtimev1pb.DaprClient) error {
			return ignore(c.GetConfiguration(ctx, &runtimev1pb.GetConfigurationRequest{StoreName: "nostore"}))
		}, codes.InvalidArgument, "ERR_CONFIGURATION_STORE_NOT_FOUND"},
		{"configuration store fails", func(ctx context.Context, c runtimev1pb.DaprClient) error {
			return ignore(c.GetConfiguration(ctx, &runtimev1pb.GetConfigurationRequest{StoreName: "brokenconfig", Keys: []string{"a"}}))
		}, codes.Internal, "ERR_CONFIGURATION_GET"},
		{"unknown lock store", func(ctx context.Context, c runtimev1pb.DaprClient) error {
			return ignore(c.TryLockAlpha1(ctx, &runtimev1pb.TryLockRequest{StoreName: "nostore", ResourceId: "r", LockOwner: "me", ExpiryInSeconds: 60}))
		}, codes.InvalidArgument, "ERR_LOCK_STORE_NOT_FOUND"},
		{"lock without a resource id", func(ctx context.Context, c runtimev1pb.DaprClient) error {
			return ignore(c.TryLockAlpha1(ctx, &runtimev1pb.TryLockRequest{StoreName: "lockstore", LockOwner: "me", ExpiryInSeconds: 60}))
		}, codes.InvalidArgument, "ERR_MALFORMED_REQUEST"},
		{"lock store fails", func(ctx context.Context, c runtimev1pb.DaprClient) error {
			return ignore(c.TryLockAlpha1(ctx, &runtimev1pb.TryLockRequest{StoreName: "brokenlock", ResourceId: "r", LockOwner: "me", ExpiryInSeconds: 60}))
		}, codes.Internal, "ERR_TRY_LOCK"},
	})
}

// TestGRPCNotConfigured: no component of a kind at all is
// FailedPrecondition.
func TestGRPCNotConfigured(t *testing.T) {
	s := start(t, options{resources: map[string]string{
		"binding.yaml": componentYAML("web", "bindings.http", "url", "http://127.0.0.1:1"),
	}})
	s.checkRPC(t, []rpc{
		{"state", func(ctx context.Context, c runtimev1pb.DaprClient) error {
			return ignore(c.GetState(ctx, &runtimev1pb.GetStateRequest{StoreName: "statestore", Key: "k"}))
		}, codes.FailedPrecondition, "ERR_STATE_STORE_NOT_CONFIGURED"},
		{"pubsub", func(ctx context.Context, c runtimev1pb.DaprClient) error {
			return ignore(c.PublishEvent(ctx, &runtimev1pb.PublishEventRequest{PubsubName: "pubsub", Topic: "orders", Data: []byte("{}")}))
		}, codes.FailedPrecondition, "ERR_PUBSUB_NOT_CONFIGURED"},
		{"secrets", func(ctx context.Context, c runtimev1pb.DaprClient) error {
			return ignore(c.GetSecret(ctx, &runtimev1pb.GetSecretRequest{StoreName: "secretstore", Key: "s"}))
		}, codes.FailedPrecondition, "ERR_SECRET_STORES_NOT_CONFIGURED"},
		{"configuration", func(ctx context.Context, c runtimev1pb.DaprClient) error {
			return ignore(c.GetConfiguration(ctx, &runtimev1pb.GetConfigurationRequest{StoreName: "configstore"}))
		}, codes.FailedPrecondition, "ERR_CONFIGURATION_STORE_NOT_CONFIGURED"},
		{"lock", func(ctx context.Context, c runtimev1pb.DaprClient) error {
			return ignore(c.TryLockAlpha1(ctx, &runtimev1pb.TryLockRequest{StoreName: "lockstore", ResourceId: "r", LockOwner: "me", ExpiryInSeconds: 60}))
		}, codes.FailedPrecondition, "ERR_LOCK_STORE_NOT_CONFIGURED"},
	})
}

// TestGRPCAPIToken: with DAPR_API_TOKEN set a call without the token is
// Unauthenticated.
func TestGRPCAPIToken(t *testing.T) {
	s := start(t, options{token: "s3cret"})
	s.checkRPC(t, []rpc{
		{"no token", func(ctx context.Context, c runtimev1pb.DaprClient) error {
			return ignore(c.GetState(ctx, &runtimev1pb.GetStateRequest{StoreName: "statestore", Key: "k"}))
		}, codes.Unauthenticated, ""},
		{"token", func(ctx context.Context, c runtimev1pb.DaprClient) error {
			ctx = metadata.AppendToOutgoingContext(ctx, "dapr-api-token", "s3cret")
			return ignore(c.GetState(ctx, &runtimev1pb.GetStateRequest{StoreName: "statestore", Key: "k"}))
		}, codes.OK, ""},
	})
}
