package api

// reasons holds Dapr's errorCode for every Code: the "ERR_…" string both
// transports send, in the JSON body over HTTP and as the ErrorInfo reason
// over gRPC. The status or gRPC code each transport answers with lives in
// that transport's own table.
var reasons = map[Code]string{
	CodeInternal:                        "ERROR",
	CodeMalformedRequest:                "ERR_MALFORMED_REQUEST",
	CodeStateStoreNotConfigured:         "ERR_STATE_STORE_NOT_CONFIGURED",
	CodeStateStoreNotFound:              "ERR_STATE_STORE_NOT_FOUND",
	CodeStateGet:                        "ERR_STATE_GET",
	CodeStateSave:                       "ERR_STATE_SAVE",
	CodeStateDelete:                     "ERR_STATE_DELETE",
	CodeStateBulkGet:                    "ERR_STATE_BULK_GET",
	CodeStateTransaction:                "ERR_STATE_TRANSACTION",
	CodeStateNotSupported:               "ERR_STATE_STORE_NOT_SUPPORTED",
	CodeStateTooManyTransactions:        "ERR_STATE_STORE_TOO_MANY_TRANSACTIONS",
	CodeStateOperationNotSupported:      "ERR_NOT_SUPPORTED_STATE_OPERATION",
	CodePubSubNotConfigured:             "ERR_PUBSUB_NOT_CONFIGURED",
	CodePubSubNotFound:                  "ERR_PUBSUB_NOT_FOUND",
	CodePubSubEmpty:                     "ERR_PUBSUB_EMPTY",
	CodeTopicEmpty:                      "ERR_TOPIC_NAME_EMPTY",
	CodePubSubMetadata:                  "ERR_PUBSUB_REQUEST_METADATA",
	CodePubSubCloudEvents:               "ERR_PUBSUB_CLOUD_EVENTS_SER",
	CodePubSubPublish:                   "ERR_PUBSUB_PUBLISH_MESSAGE",
	CodeBulkPublish:                     "ERR_PUBSUB_PUBLISH_MESSAGE",
	CodeBindingInvoke:                   "ERR_INVOKE_OUTPUT_BINDING",
	CodeHealthNotReady:                  "ERR_HEALTH_NOT_READY",
	CodeOutboundHealthNotReady:          "ERR_OUTBOUND_HEALTH_NOT_READY",
	CodeHealthAppIDMismatch:             "ERR_HEALTH_APPID_NOT_MATCH",
	CodeDirectInvoke:                    "ERR_DIRECT_INVOKE",
	CodeDirectInvokeNoAppID:             "ERR_DIRECT_INVOKE",
	CodeAppChannelNil:                   "ERR_APP_CHANNEL_NIL",
	CodeSecretStoreNotConfigured:        "ERR_SECRET_STORES_NOT_CONFIGURED",
	CodeSecretStoreNotFound:             "ERR_SECRET_STORE_NOT_FOUND",
	CodeSecretPermissionDenied:          "ERR_PERMISSION_DENIED",
	CodeSecretGet:                       "ERR_SECRET_GET",
	CodeConfigurationStoreNotConfigured: "ERR_CONFIGURATION_STORE_NOT_CONFIGURED",
	CodeConfigurationStoreNotFound:      "ERR_CONFIGURATION_STORE_NOT_FOUND",
	CodeConfigurationGet:                "ERR_CONFIGURATION_GET",
	CodeConfigurationSubscribe:          "ERR_CONFIGURATION_SUBSCRIBE",
	CodeConfigurationUnsubscribe:        "ERR_CONFIGURATION_UNSUBSCRIBE",
	CodeLockStoreNotConfigured:          "ERR_LOCK_STORE_NOT_CONFIGURED",
	CodeLockStoreNotFound:               "ERR_LOCK_STORE_NOT_FOUND",
	CodeTryLock:                         "ERR_TRY_LOCK",
	CodeUnlock:                          "ERR_UNLOCK",

	CodeActorRuntimeNotFound:       "ERR_ACTOR_RUNTIME_NOT_FOUND",
	CodeActorInstanceMissing:       "ERR_ACTOR_INSTANCE_MISSING",
	CodeActorInvokeMethod:          "ERR_ACTOR_INVOKE_METHOD",
	CodeActorStateGet:              "ERR_ACTOR_STATE_GET",
	CodeActorStateTransactionSave:  "ERR_ACTOR_STATE_TRANSACTION_SAVE",
	CodeActorNoAddress:             "ERR_ACTOR_NO_ADDRESS",
	CodeActorNoAppChannel:          "ERR_ACTOR_NO_APP_CHANNEL",
	CodeActorTimerCreate:           "ERR_ACTOR_TIMER_CREATE",
	CodeActorRuntimeClosed:         "ERR_ACTOR_RUNTIME_CLOSED",
	CodeActorStackDepth:            "ERR_ACTOR_STACK_DEPTH",
	CodeActorReminderCreate:        "ERR_ACTOR_REMINDER_CREATE",
	CodeActorReminderGet:           "ERR_ACTOR_REMINDER_GET",
	CodeActorReminderDelete:        "ERR_ACTOR_REMINDER_DELETE",
	CodeActorReminderNonHosted:     "ERR_ACTOR_REMINDER_NON_HOSTED",
	CodeActorReminderNotFound:      "ERR_ACTOR_REMINDER_NOT_FOUND",
	CodeActorReminderAlreadyExists: "ERR_ACTOR_REMINDER_ALREADY_EXISTS",
	CodeBadRequest:                 "ERR_BAD_REQUEST",
}

// Reason returns Dapr's errorCode for c ("ERROR" for an unknown code).
func (c Code) Reason() string {
	if r, ok := reasons[c]; ok {
		return r
	}
	return "ERROR"
}
