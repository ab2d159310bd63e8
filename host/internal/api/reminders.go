package api

import (
	"context"
	"encoding/json"
	"time"
)

// ActorReminderRequest creates a reminder (daprd's CreateReminderRequest).
type ActorReminderRequest struct {
	ActorType, ActorID, Name string
	DueTime, Period, TTL     string
	// Data is JSON (the HTTP body's "data" as it is; over gRPC, daprd's
	// JSON string of the bytes), nil when there is none.
	Data json.RawMessage
	// Overwrite nil is daprd's default: replace a reminder of the name.
	Overwrite *bool
	// FailurePolicy nil is the scheduler's default (three retries of a
	// failed trigger).
	FailurePolicy *ReminderFailurePolicy
}

// ReminderFailurePolicy is what the scheduler does when a trigger fails
// (Dapr's JobFailurePolicy): with Drop it gives up on that tick; else it
// tries again every Interval, at most MaxRetries times (nil: no limit).
type ReminderFailurePolicy struct {
	Drop       bool
	Interval   time.Duration
	MaxRetries *uint32
}

// ActorReminder is a reminder as daprd's GET answers it: the period is the
// scheduler's schedule ("@every 1s"), the ttl its expiry time when the
// scheduler keeps one.
type ActorReminder struct {
	ActorID   string          `json:"actorID,omitempty"`
	ActorType string          `json:"actorType,omitempty"`
	Data      json.RawMessage `json:"data,omitempty"`
	DueTime   string          `json:"dueTime,omitempty"`
	Period    string          `json:"period,omitempty"`
	TTL       string          `json:"ttl,omitempty"`
}

// NamedActorReminder is one reminder of a list (daprd's NamedActorReminder).
type NamedActorReminder struct {
	Name     string
	Reminder *ActorReminder
}

// CreateActorReminder creates (or replaces) an actor's reminder.
func (a *API) CreateActorReminder(ctx context.Context, in *ActorReminderRequest) error {
	rt := a.actorRuntime()
	if rt == nil {
		return errActorsOff()
	}
	return rt.CreateReminder(ctx, in)
}

// GetActorReminder returns an actor's reminder.
func (a *API) GetActorReminder(ctx context.Context, actorType, actorID, name string) (*ActorReminder, error) {
	rt := a.actorRuntime()
	if rt == nil {
		return nil, errActorsOff()
	}
	return rt.GetReminder(ctx, actorType, actorID, name)
}

// DeleteActorReminder deletes an actor's reminder; a missing one is no
// error.
func (a *API) DeleteActorReminder(ctx context.Context, actorType, actorID, name string) error {
	rt := a.actorRuntime()
	if rt == nil {
		return errActorsOff()
	}
	return rt.DeleteReminder(ctx, actorType, actorID, name)
}

// ListActorReminders lists the reminders of an actor type, of one actor
// when actorID is not nil.
func (a *API) ListActorReminders(ctx context.Context, actorType string, actorID *string) ([]NamedActorReminder, error) {
	rt := a.actorRuntime()
	if rt == nil {
		return nil, errActorsOff()
	}
	return rt.ListReminders(ctx, actorType, actorID)
}

// DeleteActorReminders deletes the reminders of an actor type, of one
// actor when actorID is not nil.
func (a *API) DeleteActorReminders(ctx context.Context, actorType string, actorID *string) error {
	rt := a.actorRuntime()
	if rt == nil {
		return errActorsOff()
	}
	return rt.DeleteReminders(ctx, actorType, actorID)
}
