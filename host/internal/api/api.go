// Package api holds the building blocks of the Dapr API (state, publish,
// bindings, metadata, health) as typed, transport-neutral operations:
// func(ctx, *In) (*Out, error). The HTTP adapter (package httpapi) decodes a
// request, calls one of these and encodes the result; it owns the single
// table that maps an *Error's Code to Dapr's status code and errorCode.
//
// An API is safe for concurrent use. The set of components it serves is an
// immutable Snapshot swapped atomically, so a request sees one consistent set.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/bindings"
	"github.com/wapr-dev/wapr/host/component/pubsub"
	"github.com/wapr-dev/wapr/host/component/state"
	"github.com/wapr-dev/wapr/host/internal/tracing"
)

// API serves the building blocks over a Snapshot of components.
type API struct {
	appID    string
	snapshot atomic.Pointer[Snapshot]

	outboundReady atomic.Bool
	appReady      atomic.Bool

	app        atomic.Pointer[appHolder]
	invocation atomic.Pointer[Invocation]
	streamer   atomic.Pointer[streamerHolder]
	actors     atomic.Pointer[actorsHolder]
	instances  instances

	// secretScopes and tracer are set before serving and read-only after.
	secretScopes map[string]SecretScope
	tracer       *tracing.Tracer
	log          atomic.Pointer[slog.Logger]

	mu       sync.Mutex
	extended map[string]string
	subs     []SubscriptionInfo
	failed   []FailedComponent
	runtime  RuntimeInfo
}

// RuntimeInfo describes the running host for the metadata API.
type RuntimeInfo struct {
	Version  string
	AppPort  int
	Protocol string
	Address  string
}

// New returns an API for appID serving no components until SetSnapshot.
func New(appID string, info RuntimeInfo) *API {
	a := &API{appID: appID, extended: map[string]string{}, runtime: info}
	a.snapshot.Store(&Snapshot{})
	return a
}

// SetLogger sets where the API logs what no caller sees (a configuration
// update the app refused); slog.Default() until set.
func (a *API) SetLogger(l *slog.Logger) { a.log.Store(l) }

func (a *API) logger() *slog.Logger {
	if l := a.log.Load(); l != nil {
		return l
	}
	return slog.Default()
}

// AppID is the app id this sidecar serves.
func (a *API) AppID() string { return a.appID }

// Snapshot is the set of components the API serves. It is never modified
// after SetSnapshot.
type Snapshot struct {
	States  map[string]*StateStore
	PubSubs map[string]*PubSub
	Outputs map[string]*OutputBinding
	Inputs  map[string]*InputBinding

	Secrets        map[string]*SecretStore
	Configurations map[string]*ConfigurationStore
	Locks          map[string]*LockStore

	// InvokePolicy applies the resiliency policies of target apps to service
	// invocation; nil applies none.
	InvokePolicy InvokePolicy
}

// InvokePolicy runs an invocation of appID's method under that app's
// resiliency policy (timeouts, retries, circuit breaking); call makes one
// attempt. Implementations are safe for concurrent use.
type InvokePolicy interface {
	Invoke(ctx context.Context, appID, method string, call func(context.Context) (*InvokeResponse, error)) (*InvokeResponse, error)
}

// Served describes what runs a component, for people and the metadata API.
type Served struct {
	Runtime string // "native" or "wasm"
	Engine  string // for wasm: the engine
	Digest  string // for wasm: the module digest
	ABI     string // for wasm: the ABI version
	Note    string // e.g. why a builtin serves instead of a Wasm module
}

// Info is what every served component shares.
type Info struct {
	Name, Type, Version string
	Served              Served
	// Gate tracks calls in flight for hot reload (nil: untracked).
	Gate *Gate
}

// StateStore is a state store as the API serves it.
type StateStore struct {
	Info
	Store    state.Store
	Bulk     state.BulkStore     // nil when the store has no native bulk
	Tx       state.Transactional // nil when the store is not transactional
	Features []component.Feature
	// Prefix is prepended as Prefix+"||"+key; empty means keys are stored as
	// given (keyPrefix none, or appid with no app id).
	Prefix string
	// Actor marks the store that keeps actor state (metadata
	// actorStateStore "true"; it must be transactional).
	Actor bool
}

// PubSub is a broker as the API serves it.
type PubSub struct {
	Info
	PubSub   pubsub.PubSub
	Bulk     pubsub.BulkPublisher // nil without native bulk publish
	Features []component.Feature
}

// OutputBinding is an output binding as the API serves it.
type OutputBinding struct {
	Info
	Binding bindings.Output
}

// InputBinding is an input binding; the host delivers its events to the app.
type InputBinding struct {
	Info
	Binding bindings.Input
	// Route is the app path events are POSTed to (metadata "route", else
	// "/" + the component name).
	Route string
	// SkipProbe is set when the component's "direction" metadata names
	// "input": the app is not asked (OPTIONS) whether it wants the events.
	SkipProbe bool
}

// SetSnapshot makes s the served set of components.
func (a *API) SetSnapshot(s *Snapshot) { a.snapshot.Store(s) }

// Snapshot returns the served set of components; it must not be modified.
func (a *API) Snapshot() *Snapshot { return a.snapshot.Load() }

// SetFailed records the components that failed to load, for the metadata API.
func (a *API) SetFailed(f []FailedComponent) {
	a.mu.Lock()
	a.failed = append([]FailedComponent(nil), f...)
	a.mu.Unlock()
}

// SetSubscriptions records the active subscriptions, for the metadata API.
func (a *API) SetSubscriptions(s []SubscriptionInfo) {
	a.mu.Lock()
	a.subs = append([]SubscriptionInfo(nil), s...)
	a.mu.Unlock()
}

// SetOutboundReady marks components and the API server as ready.
func (a *API) SetOutboundReady(ready bool) { a.outboundReady.Store(ready) }

// SetAppReady marks the app channel as ready (subscriptions fetched).
func (a *API) SetAppReady(ready bool) { a.appReady.Store(ready) }

// Code identifies an API failure; the HTTP adapter maps each to Dapr's status
// and errorCode in one table.
type Code int

// Failure codes, named after Dapr's errorCode values.
const (
	CodeInternal Code = iota
	CodeMalformedRequest
	CodeStateStoreNotConfigured
	CodeStateStoreNotFound
	CodeStateGet
	CodeStateSave
	CodeStateDelete
	CodeStateBulkGet
	CodeStateTransaction
	CodeStateNotSupported
	CodeStateTooManyTransactions
	CodeStateOperationNotSupported
	CodePubSubNotConfigured
	CodePubSubNotFound
	CodePubSubEmpty
	CodeTopicEmpty
	CodePubSubMetadata
	CodePubSubCloudEvents
	CodePubSubPublish
	CodeBulkPublish
	CodeBindingInvoke
	CodeHealthNotReady
	CodeOutboundHealthNotReady
	CodeHealthAppIDMismatch
	CodeDirectInvoke
	CodeDirectInvokeNoAppID
	CodeAppChannelNil
	CodeSecretStoreNotConfigured
	CodeSecretStoreNotFound
	CodeSecretPermissionDenied
	CodeSecretGet
	CodeConfigurationStoreNotConfigured
	CodeConfigurationStoreNotFound
	CodeConfigurationGet
	CodeConfigurationSubscribe
	CodeConfigurationUnsubscribe
	CodeLockStoreNotConfigured
	CodeLockStoreNotFound
	CodeTryLock
	CodeUnlock
	CodeActorRuntimeNotFound
	CodeActorInstanceMissing
	CodeActorInvokeMethod
	CodeActorStateGet
	CodeActorStateTransactionSave
	CodeActorNoAddress
	CodeActorNoAppChannel
	CodeActorTimerCreate
	CodeActorRuntimeClosed
	CodeActorStackDepth
	CodeActorReminderCreate
	CodeActorReminderGet
	CodeActorReminderDelete
	CodeActorReminderNonHosted
	CodeActorReminderNotFound
	CodeActorReminderAlreadyExists
	CodeBadRequest
)

// Error is an API failure: what went wrong (Code), a message for people,
// and the component error behind it, if any.
type Error struct {
	Code    Code
	Message string
	Err     error
	// Metadata is returned as metadata.* headers even on error (bindings).
	Metadata map[string]string
	// FailedEntries lists the entries a bulk publish could not send.
	FailedEntries []FailedEntry
}

func (e *Error) Error() string { return e.Message }

func (e *Error) Unwrap() error { return e.Err }

func errorf(code Code, cause error, format string, args ...any) *Error {
	return &Error{Code: code, Err: cause, Message: fmt.Sprintf(format, args...)}
}

// AsError returns err as an *Error, wrapping anything else as CodeInternal.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: CodeInternal, Message: err.Error(), Err: err}
}
