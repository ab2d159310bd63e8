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

// daprError is a row of the table: the status and errorCode Dapr answers with.
type daprError struct {
	status int
	code   string
}

// errorTable maps every api failure to Dapr's answer (daprd 1.18 behaviour,
// see reference/dapr-api.md). It is the only such table; statusFor refines a
// few rows by the component error behind them, as daprd does.
var errorTable = map[api.Code]daprError{
	api.CodeInternal:                   {500, "ERROR"},
	api.CodeMalformedRequest:           {400, "ERR_MALFORMED_REQUEST"},
	api.CodeStateStoreNotConfigured:    {500, "ERR_STATE_STORE_NOT_CONFIGURED"},
	api.CodeStateStoreNotFound:         {400, "ERR_STATE_STORE_NOT_FOUND"},
	api.CodeStateGet:                   {500, "ERR_STATE_GET"},
	api.CodeStateSave:                  {500, "ERR_STATE_SAVE"},
	api.CodeStateDelete:                {500, "ERR_STATE_DELETE"},
	api.CodeStateBulkGet:               {500, "ERR_STATE_BULK_GET"},
	api.CodeStateTransaction:           {500, "ERR_STATE_TRANSACTION"},
	api.CodeStateNotSupported:          {500, "ERR_STATE_STORE_NOT_SUPPORTED"},
	api.CodeStateTooManyTransactions:   {400, "ERR_STATE_STORE_TOO_MANY_TRANSACTIONS"},
	api.CodeStateOperationNotSupported: {400, "ERR_NOT_SUPPORTED_STATE_OPERATION"},
	api.CodePubSubNotConfigured:        {400, "ERR_PUBSUB_NOT_CONFIGURED"},
	api.CodePubSubNotFound:             {404, "ERR_PUBSUB_NOT_FOUND"},
	api.CodePubSubEmpty:                {404, "ERR_PUBSUB_EMPTY"},
	api.CodeTopicEmpty:                 {404, "ERR_TOPIC_NAME_EMPTY"},
	api.CodePubSubMetadata:             {400, "ERR_PUBSUB_REQUEST_METADATA"},
	api.CodePubSubCloudEvents:          {500, "ERR_PUBSUB_CLOUD_EVENTS_SER"},
	api.CodePubSubPublish:              {500, "ERR_PUBSUB_PUBLISH_MESSAGE"},
	api.CodeBulkPublish:                {500, "ERR_PUBSUB_PUBLISH_MESSAGE"},
	api.CodeBindingInvoke:              {500, "ERR_INVOKE_OUTPUT_BINDING"},
	api.CodeHealthNotReady:             {500, "ERR_HEALTH_NOT_READY"},
	api.CodeOutboundHealthNotReady:     {500, "ERR_OUTBOUND_HEALTH_NOT_READY"},
	api.CodeHealthAppIDMismatch:        {500, "ERR_HEALTH_APPID_NOT_MATCH"},
	api.CodeDirectInvoke:               {500, "ERR_DIRECT_INVOKE"},
	api.CodeDirectInvokeNoAppID:        {404, "ERR_DIRECT_INVOKE"},
	api.CodeAppChannelNil:              {500, "ERR_APP_CHANNEL_NIL"},

	api.CodeSecretStoreNotConfigured: {500, "ERR_SECRET_STORES_NOT_CONFIGURED"},
	// daprd answers 401 for an unknown secret store (its docs say 400).
	api.CodeSecretStoreNotFound:    {401, "ERR_SECRET_STORE_NOT_FOUND"},
	api.CodeSecretPermissionDenied: {403, "ERR_PERMISSION_DENIED"},
	api.CodeSecretGet:              {500, "ERR_SECRET_GET"},

	api.CodeConfigurationStoreNotConfigured: {500, "ERR_CONFIGURATION_STORE_NOT_CONFIGURED"},
	api.CodeConfigurationStoreNotFound:      {400, "ERR_CONFIGURATION_STORE_NOT_FOUND"},
	api.CodeConfigurationGet:                {500, "ERR_CONFIGURATION_GET"},
	api.CodeConfigurationSubscribe:          {500, "ERR_CONFIGURATION_SUBSCRIBE"},
	api.CodeConfigurationUnsubscribe:        {500, "ERR_CONFIGURATION_UNSUBSCRIBE"},

	api.CodeLockStoreNotConfigured: {500, "ERR_LOCK_STORE_NOT_CONFIGURED"},
	api.CodeLockStoreNotFound:      {400, "ERR_LOCK_STORE_NOT_FOUND"},
	api.CodeTryLock:                {500, "ERR_TRY_LOCK"},
	api.CodeUnlock:                 {500, "ERR_UNLOCK"},
}

// statusFor returns the status and errorCode for e.
func statusFor(e *api.Error) daprError {
	row, ok := errorTable[e.Code]
	if !ok {
		row = errorTable[api.CodeInternal]
	}
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
