package grpcapi

import (
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/state"
	"github.com/wapr-dev/wapr/host/internal/api"
)

// errorDomain is the ErrorInfo domain daprd uses.
const errorDomain = "dapr.io"

// grpcCode maps every api failure to the gRPC code daprd 1.18 answers with;
// the ErrorInfo reason is the Code's Reason, the errorCode the HTTP API
// sends. statusOf refines a few rows by the component error behind them.
var grpcCode = map[api.Code]codes.Code{
	api.CodeInternal:                   codes.Internal,
	api.CodeMalformedRequest:           codes.InvalidArgument,
	api.CodeStateStoreNotConfigured:    codes.FailedPrecondition,
	api.CodeStateStoreNotFound:         codes.InvalidArgument,
	api.CodeStateGet:                   codes.Internal,
	api.CodeStateSave:                  codes.Internal,
	api.CodeStateDelete:                codes.Internal,
	api.CodeStateBulkGet:               codes.Internal,
	api.CodeStateTransaction:           codes.Internal,
	api.CodeStateNotSupported:          codes.Unimplemented,
	api.CodeStateTooManyTransactions:   codes.InvalidArgument,
	api.CodeStateOperationNotSupported: codes.Unimplemented,

	api.CodePubSubNotConfigured: codes.FailedPrecondition,
	api.CodePubSubNotFound:      codes.InvalidArgument,
	api.CodePubSubEmpty:         codes.InvalidArgument,
	api.CodeTopicEmpty:          codes.InvalidArgument,
	api.CodePubSubMetadata:      codes.InvalidArgument,
	api.CodePubSubCloudEvents:   codes.InvalidArgument,
	api.CodePubSubPublish:       codes.Internal,
	api.CodeBulkPublish:         codes.Internal,

	api.CodeBindingInvoke: codes.Internal,

	api.CodeHealthNotReady:         codes.Internal,
	api.CodeOutboundHealthNotReady: codes.Internal,
	api.CodeHealthAppIDMismatch:    codes.Internal,

	api.CodeDirectInvoke:        codes.Internal,
	api.CodeDirectInvokeNoAppID: codes.NotFound,
	api.CodeAppChannelNil:       codes.Internal,

	api.CodeSecretStoreNotConfigured: codes.FailedPrecondition,
	api.CodeSecretStoreNotFound:      codes.InvalidArgument,
	api.CodeSecretPermissionDenied:   codes.PermissionDenied,
	api.CodeSecretGet:                codes.Internal,

	api.CodeConfigurationStoreNotConfigured: codes.FailedPrecondition,
	api.CodeConfigurationStoreNotFound:      codes.InvalidArgument,
	api.CodeConfigurationGet:                codes.Internal,
	api.CodeConfigurationSubscribe:          codes.InvalidArgument, // as daprd
	api.CodeConfigurationUnsubscribe:        codes.Internal,

	api.CodeLockStoreNotConfigured: codes.FailedPrecondition,
	api.CodeLockStoreNotFound:      codes.InvalidArgument,
	api.CodeTryLock:                codes.Internal,
	api.CodeUnlock:                 codes.Internal,

	api.CodeActorRuntimeNotFound:       codes.Internal,
	api.CodeActorInstanceMissing:       codes.Internal,
	api.CodeActorInvokeMethod:          codes.Internal,
	api.CodeActorStateGet:              codes.Internal,
	api.CodeActorStateTransactionSave:  codes.Internal,
	api.CodeActorNoAddress:             codes.FailedPrecondition,
	api.CodeActorNoAppChannel:          codes.Unavailable,
	api.CodeActorTimerCreate:           codes.Internal,
	api.CodeActorRuntimeClosed:         codes.Unavailable,
	api.CodeActorStackDepth:            codes.ResourceExhausted,
	api.CodeActorReminderCreate:        codes.Internal,
	api.CodeActorReminderGet:           codes.Internal,
	api.CodeActorReminderDelete:        codes.Internal,
	api.CodeActorReminderNonHosted:     codes.PermissionDenied,
	api.CodeActorReminderNotFound:      codes.NotFound,
	api.CodeActorReminderAlreadyExists: codes.AlreadyExists,
	api.CodeBadRequest:                 codes.InvalidArgument,
}

// codeFor returns the gRPC code for e.
func codeFor(e *api.Error) codes.Code {
	c, ok := grpcCode[e.Code]
	if !ok {
		c = codes.Internal
	}
	switch e.Code {
	case api.CodeStateSave, api.CodeStateDelete:
		// An ETag conflict is Aborted and a malformed ETag InvalidArgument
		// on single writes, as daprd answers.
		var etag *state.ETagError
		if errors.As(e.Err, &etag) {
			if etag.Kind == state.ETagInvalid {
				return codes.InvalidArgument
			}
			return codes.Aborted
		}
		fallthrough
	case api.CodeStateGet:
		if errors.Is(e.Err, component.ErrInvalidArgument) {
			return codes.InvalidArgument
		}
	}
	return c
}

// statusError turns an api failure into a gRPC status error carrying an
// ErrorInfo detail whose reason is Dapr's errorCode.
func statusError(err error) error {
	e := api.AsError(err)
	st := status.New(codeFor(e), e.Message)
	if d, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: e.Code.Reason(), Domain: errorDomain}); derr == nil {
		st = d
	}
	return st.Err()
}
