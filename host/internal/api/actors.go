package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/state"
)

// ActorCallHeader marks an invocation another sidecar forwarded to this one
// as an actor call, not a service invocation: its value is
// "<type>/<id>", each part path-escaped, and the request's Method is the
// actor method. Apps cannot set it: Invoke drops it with the other
// sidecar-only headers before anything leaves a sidecar.
const ActorCallHeader = "wapr-actor"

// ActorRuntime is the actor subsystem (host/internal/actors), set by the
// host once placement is configured. Implementations are safe for
// concurrent use.
type ActorRuntime interface {
	// Invoke calls an actor method wherever the actor lives: on this
	// sidecar's app, or forwarded to the sidecar that owns it.
	Invoke(ctx context.Context, req *ActorInvokeRequest) (*InvokeResponse, error)
	// CallLocal calls an actor this sidecar owns (a call another sidecar
	// forwarded). An actor it does not own is an *Error with
	// CodeActorNoAddress, which the caller takes as "look it up again".
	CallLocal(ctx context.Context, req *ActorInvokeRequest) (*InvokeResponse, error)
	// IsActive reports whether the actor is active on this sidecar.
	IsActive(actorType, actorID string) bool
	// CreateTimer and DeleteTimer manage an active actor's timers.
	CreateTimer(ctx context.Context, req *ActorTimerRequest) error
	DeleteTimer(ctx context.Context, actorType, actorID, name string) error
	// CreateReminder, GetReminder and DeleteReminder manage reminders, in
	// Dapr's scheduler (reminders.go).
	CreateReminder(ctx context.Context, req *ActorReminderRequest) error
	GetReminder(ctx context.Context, actorType, actorID, name string) (*ActorReminder, error)
	DeleteReminder(ctx context.Context, actorType, actorID, name string) error
	// ListReminders and DeleteReminders list and delete the reminders of
	// an actor type, of one actor when actorID is not nil.
	ListReminders(ctx context.Context, actorType string, actorID *string) ([]NamedActorReminder, error)
	DeleteReminders(ctx context.Context, actorType string, actorID *string) error
	// Status describes the runtime for the metadata API.
	Status() ActorRuntimeInfo
}

// ActorRuntimeInfo is daprd's actorRuntime section of the metadata API.
type ActorRuntimeInfo struct {
	// Status is RUNNING (wapr reports no section while actors are off).
	Status       string         `json:"runtimeStatus"`
	ActiveActors []ActiveActors `json:"activeActors,omitempty"`
	// HostReady: connected to placement and its tables are in force.
	HostReady bool   `json:"hostReady"`
	Placement string `json:"placement,omitempty"`
	// SchedulerAddresses are the scheduler members the reminders' client
	// is connected to; the metadata API shows them as daprd's "scheduler".
	SchedulerAddresses []string `json:"-"`
}

// ActiveActors counts the active actors of a type this sidecar hosts.
type ActiveActors struct {
	Type  string `json:"type"`
	Count int    `json:"count"`
}

// ActorInvokeRequest is a call of an actor's method.
type ActorInvokeRequest struct {
	ActorType, ActorID, Method string
	// Verb and Query are the caller's; the app is always called with PUT,
	// as daprd does.
	Verb, Query string
	Headers     []Header
	Body        []byte
}

// ActorTimerRequest creates a timer (daprd's CreateTimerRequest).
type ActorTimerRequest struct {
	ActorType, ActorID, Name string
	DueTime, Period, TTL     string
	Callback                 string
	Data                     json.RawMessage
}

// SetActors makes rt the actor runtime (nil: actors are off).
func (a *API) SetActors(rt ActorRuntime) { a.actors.Store(&actorsHolder{rt}) }

type actorsHolder struct{ rt ActorRuntime }

func (a *API) actorRuntime() ActorRuntime {
	if h := a.actors.Load(); h != nil {
		return h.rt
	}
	return nil
}

// errActorsOff is daprd's answer when actors cannot run: no placement or no
// actor state store.
func errActorsOff() *Error {
	return errorf(CodeActorRuntimeNotFound, nil, `the state store is not configured to use the actor runtime. Have you set the - name: actorStateStore value: "true" in your state store component file?`)
}

// HasActorStore reports whether a state store is the actor state store.
func (a *API) HasActorStore() bool {
	for _, s := range a.snapshot.Load().States {
		if s.Actor {
			return true
		}
	}
	return false
}

// InvokeActor calls an actor's method. The app's answer, any status, is a
// response.
func (a *API) InvokeActor(ctx context.Context, req *ActorInvokeRequest) (*InvokeResponse, error) {
	rt := a.actorRuntime()
	if rt == nil {
		return nil, errActorsOff()
	}
	req.Headers = forwardable(req.Headers)
	return rt.Invoke(ctx, req)
}

// ActorStateRequest reads one key of an actor's state.
type ActorStateRequest struct {
	ActorType, ActorID, Key string
}

// actorStore returns the actor state store (actorStateStore "true"), admitted
// for one call: the caller must call Gate.Leave.
func (a *API) actorStore() (*StateStore, *Error) {
	for {
		var found *StateStore
		for _, s := range a.snapshot.Load().States {
			if s.Actor {
				found = s
				break
			}
		}
		if found == nil || a.actorRuntime() == nil {
			return nil, errActorsOff()
		}
		if found.Gate.Enter() {
			return found, nil
		}
	}
}

// actorKey is daprd's key for an actor's state: appID||type||id||key, with
// no keyPrefix (daprd applies none to actor state), so that the data is
// shared with daprd sidecars of the same app.
func (a *API) actorKey(actorType, actorID, key string) string {
	return a.appID + keySeparator + actorType + keySeparator + actorID + keySeparator + key
}

// actorMetadata is what daprd passes the store with every actor state call.
func (a *API) actorMetadata(actorType, actorID string) map[string]string {
	return map[string]string{"partitionKey": a.appID + keySeparator + actorType + keySeparator + actorID}
}

// GetActorState returns the value of an actor's key, or nil when there is
// none.
func (a *API) GetActorState(ctx context.Context, in *ActorStateRequest) (*GetStateResponse, error) {
	s, e := a.actorStore()
	if e != nil {
		return nil, e
	}
	defer s.Gate.Leave()
	span := a.componentSpan(ctx, "state", "Get", &s.Info)
	res, err := s.Store.Get(ctx, &state.GetRequest{
		Key:      a.actorKey(in.ActorType, in.ActorID, in.Key),
		Metadata: a.actorMetadata(in.ActorType, in.ActorID),
	})
	endComponent(span, err)
	if err != nil {
		if errors.Is(err, component.ErrNotFound) {
			return nil, nil
		}
		return nil, errorf(CodeActorStateGet, err, "error getting actor state: %v", err)
	}
	return &GetStateResponse{Data: res.Data, ETag: res.ETag, ContentType: res.ContentType, Metadata: res.Metadata}, nil
}

// ActorStateOperation is one element of an actor state transaction, as the
// HTTP body carries it: {"operation":"upsert|delete","request":{...}}.
type ActorStateOperation struct {
	Operation string `json:"operation"`
	Request   struct {
		Key      string            `json:"key"`
		Value    any               `json:"value"`
		ETag     *string           `json:"etag,omitempty"`
		Metadata map[string]string `json:"metadata,omitempty"`
	} `json:"request"`
	// RawValue, when not nil, is stored as it is instead of Value's JSON
	// encoding (the gRPC API's bytes, as daprd stores them).
	RawValue []byte `json:"-"`
}

// ActorTransactionRequest saves an actor's state atomically.
type ActorTransactionRequest struct {
	ActorType, ActorID string
	Operations         []ActorStateOperation
}

// ActorStateTransaction applies upserts and deletes to an active actor's
// state all-or-nothing. The actor must be active on this sidecar (daprd's
// ERR_ACTOR_INSTANCE_MISSING otherwise): only its owner writes its state.
// An upsert's value is stored as its JSON encoding, as daprd stores it.
func (a *API) ActorStateTransaction(ctx context.Context, in *ActorTransactionRequest) error {
	s, e := a.actorStore()
	if e != nil {
		return e
	}
	defer s.Gate.Leave()
	if !a.actorRuntime().IsActive(in.ActorType, in.ActorID) {
		return errorf(CodeActorInstanceMissing, nil, "actor instance is missing")
	}
	if s.Tx == nil {
		return errorf(CodeActorStateTransactionSave, nil, "error saving actor transaction state: state store %s is not transactional", s.Name)
	}
	md := a.actorMetadata(in.ActorType, in.ActorID)
	ops := make([]state.Operation, len(in.Operations))
	for i, op := range in.Operations {
		r := op.Request
		if r.Key == "" {
			return errorf(CodeActorStateTransactionSave, nil, "error saving actor transaction state: missing key")
		}
		key := a.actorKey(in.ActorType, in.ActorID, r.Key)
		switch op.Operation {
		case "upsert":
			if _, ok := r.Metadata["ttlInSeconds"]; ok {
				// daprd refuses it too unless the ActorStateTTL feature is on.
				return errorf(CodeActorStateTransactionSave, nil, "error saving actor transaction state: ttlInSeconds is not supported without the \"ActorStateTTL\" feature enabled")
			}
			value := op.RawValue
			if value == nil {
				var err error
				if value, err = json.Marshal(r.Value); err != nil {
					return errorf(CodeMalformedRequest, err, "failed deserializing HTTP body: %v", err)
				}
			}
			meta := md
			if len(r.Metadata) > 0 {
				meta = make(map[string]string, len(r.Metadata)+1)
				for k, v := range r.Metadata {
					meta[k] = v
				}
				for k, v := range md {
					meta[k] = v
				}
			}
			ops[i] = &state.SetRequest{Key: key, Value: value, ETag: r.ETag, Metadata: meta}
		case "delete":
			ops[i] = &state.DeleteRequest{Key: key, ETag: r.ETag, Metadata: md}
		default:
			return errorf(CodeActorStateTransactionSave, nil, "error saving actor transaction state: operation type %s not supported", op.Operation)
		}
	}
	span := a.componentSpan(ctx, "state", "Transaction", &s.Info)
	err := s.Tx.Multi(ctx, &state.TransactionRequest{Operations: ops, Metadata: md})
	endComponent(span, err)
	if err != nil {
		return errorf(CodeActorStateTransactionSave, err, "error saving actor transaction state: %v", err)
	}
	return nil
}

// CreateActorTimer creates a timer of an actor.
func (a *API) CreateActorTimer(ctx context.Context, in *ActorTimerRequest) error {
	rt := a.actorRuntime()
	if rt == nil {
		return errActorsOff()
	}
	return rt.CreateTimer(ctx, in)
}

// DeleteActorTimer deletes a timer of an actor; a missing one is no error.
func (a *API) DeleteActorTimer(ctx context.Context, actorType, actorID, name string) error {
	rt := a.actorRuntime()
	if rt == nil {
		return errActorsOff()
	}
	return rt.DeleteTimer(ctx, actorType, actorID, name)
}

// invokeActorLocal serves an actor call another sidecar forwarded (see
// ActorCallHeader).
func (a *API) invokeActorLocal(ctx context.Context, target string, req *InvokeRequest) (*InvokeResponse, error) {
	rt := a.actorRuntime()
	if rt == nil {
		return nil, errActorsOff()
	}
	t, id, ok := strings.Cut(target, "/")
	if ok {
		var err1, err2 error
		t, err1 = url.PathUnescape(t)
		id, err2 = url.PathUnescape(id)
		ok = err1 == nil && err2 == nil
	}
	if !ok {
		return nil, errorf(CodeMalformedRequest, nil, "malformed actor call header %q", target)
	}
	return rt.CallLocal(ctx, &ActorInvokeRequest{
		ActorType: t, ActorID: id, Method: req.Method, Verb: req.Verb, Query: req.Query,
		Headers: forwardable(req.Headers), Body: req.Body,
	})
}

// ActorTarget is the ActorCallHeader value for an actor.
func ActorTarget(actorType, actorID string) string {
	return url.PathEscape(actorType) + "/" + url.PathEscape(actorID)
}

// Errorf returns an *Error; for the actor runtime, which reports its
// failures with the API's codes.
func Errorf(code Code, cause error, format string, args ...any) *Error {
	return errorf(code, cause, format, args...)
}
