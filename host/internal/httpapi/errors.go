package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/valyala/fasthttp"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/state"
	"github.com/wapr-dev/wapr/host/internal/api"
)

// httpStatus maps every api failure to the HTTP status daprd 1.18 answers
// with; the errorCode is the Code's Reason.
// statusFor refines a few rows by the component error behind them, as daprd
// does.
var httpStatus = map[api.Code]int{
	api.CodeInternal:                        500,
	api.CodeMalformedRequest:                400,
	api.CodeStateStoreNotConfigured:         500,
	api.CodeStateStoreNotFound:              400,
	api.CodeStateGet:                        500,
	api.CodeStateSave:                       500,
	api.CodeStateDelete:                     500,
	api.CodeStateBulkGet:                    500,
	api.CodeStateTransaction:                500,
	api.CodeStateNotSupported:               500,
	api.CodeStateTooManyTransactions:        400,
	api.CodeStateOperationNotSupported:      400,
	api.CodePubSubNotConfigured:             400,
	api.CodePubSubNotFound:                  404,
	api.CodePubSubEmpty:                     404,
	api.CodeTopicEmpty:                      404,
	api.CodePubSubMetadata:                  400,
	api.CodePubSubCloudEvents:               500,
	api.CodePubSubPublish:                   500,
	api.CodeBulkPublish:                     500,
	api.CodeBindingInvoke:                   500,
	api.CodeHealthNotReady:                  500,
	api.CodeOutboundHealthNotReady:          500,
	api.CodeHealthAppIDMismatch:             500,
	api.CodeDirectInvoke:                    500,
	api.CodeDirectInvokeNoAppID:             404,
	api.CodeAppChannelNil:                   500,
	api.CodeSecretStoreNotConfigured:        500,
	api.CodeSecretStoreNotFound:             401, // daprd's code answers 401 (its docs say 400)
	api.CodeSecretPermissionDenied:          403,
	api.CodeSecretGet:                       500,
	api.CodeConfigurationStoreNotConfigured: 500,
	api.CodeConfigurationStoreNotFound:      400,
	api.CodeConfigurationGet:                500,
	api.CodeConfigurationSubscribe:          500,
	api.CodeConfigurationUnsubscribe:        500,
	api.CodeLockStoreNotConfigured:          500,
	api.CodeLockStoreNotFound:               400,
	api.CodeTryLock:                         500,
	api.CodeUnlock:                          500,

	// Actors (daprd's pkg/messages/predefined.go).
	api.CodeActorRuntimeNotFound:       500,
	api.CodeActorInstanceMissing:       400,
	api.CodeActorInvokeMethod:          500,
	api.CodeActorStateGet:              500,
	api.CodeActorStateTransactionSave:  500,
	api.CodeActorNoAddress:             404,
	api.CodeActorNoAppChannel:          400,
	api.CodeActorTimerCreate:           500,
	api.CodeActorRuntimeClosed:         503,
	api.CodeActorStackDepth:            500,
	api.CodeActorReminderCreate:        500,
	api.CodeActorReminderGet:           500,
	api.CodeActorReminderDelete:        500,
	api.CodeActorReminderNonHosted:     403,
	api.CodeActorReminderNotFound:      404,
	api.CodeActorReminderAlreadyExists: 409,
	api.CodeBadRequest:                 400,
}

// daprError is the status and errorCode of an answer.
type daprError struct {
	status int
	code   string
}

// statusFor returns the status and errorCode for e.
func statusFor(e *api.Error) daprError {
	status, ok := httpStatus[e.Code]
	if !ok {
		status = 500
	}
	row := daprError{status: status, code: e.Code.Reason()}
	switch e.Code {
	case api.CodeStateSave, api.CodeStateDelete:
		// An ETag conflict is 409 and a malformed ETag 400 on single
		// writes; inside a transaction daprd keeps 500.
		var etag *state.ETagError
		if errors.As(e.Err, &etag) {
			if etag.Kind == state.ETagInvalid {
				row.status = 400
			} else {
				row.status = 409
			}
			return row
		}
		fallthrough
	case api.CodeStateGet:
		if errors.Is(e.Err, component.ErrInvalidArgument) {
			row.status = 400
		}
	}
	return row
}

type errorBody struct {
	ErrorCode     string           `json:"errorCode"`
	Message       string           `json:"message"`
	FailedEntries []failedEntryOut `json:"failedEntries,omitempty"`
}

type failedEntryOut struct {
	EntryID string `json:"entryId"`
	Error   string `json:"error"`
}

func (s *Server) writeAPIError(ctx *fasthttp.RequestCtx, err error) {
	e := api.AsError(err)
	row := statusFor(e)
	if row.status >= 500 {
		s.log.Warn("request failed", "method", string(ctx.Method()), "path", string(ctx.Path()), "errorCode", row.code, "error", e.Message)
	}
	setMetadataHeaders(ctx, e.Metadata)
	body := errorBody{ErrorCode: row.code, Message: e.Message}
	for _, f := range e.FailedEntries {
		body.FailedEntries = append(body.FailedEntries, failedEntryOut{EntryID: f.EntryID, Error: f.Error})
	}
	writeJSON(ctx, row.status, body)
}

func writeError(ctx *fasthttp.RequestCtx, status int, code, msg string) {
	writeJSON(ctx, status, errorBody{ErrorCode: code, Message: msg})
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = 500, []byte(`{"errorCode":"ERROR","message":"failed to encode the response"}`)
	}
	ctx.Response.Header.SetContentType("application/json")
	ctx.SetStatusCode(status)
	ctx.SetBody(b)
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
