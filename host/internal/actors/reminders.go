package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	timeutils "github.com/dapr/kit/time"

	"github.com/wapr-dev/wapr/host/internal/api"
	"github.com/wapr-dev/wapr/host/internal/scheduler"
)

// ReminderStore keeps actor reminders: Dapr's scheduler (a
// *scheduler.Client). Reminders are durable and cluster-wide: the
// scheduler decides when one fires and sends the trigger to one sidecar
// hosting its type, which runs it (CallReminder) wherever the actor lives.
type ReminderStore interface {
	CreateReminder(ctx context.Context, r *scheduler.Reminder) error
	GetReminder(ctx context.Context, actorType, actorID, name string) (*scheduler.Reminder, error)
	DeleteReminder(ctx context.Context, actorType, actorID, name string) error
	ListReminders(ctx context.Context, actorType string, actorID *string) ([]*scheduler.Reminder, error)
	DeleteReminders(ctx context.Context, actorType string, actorID *string) error
}

// SetReminders sets where reminders are kept; call it before Start. Without
// it, reminder calls fail as daprd's do without a scheduler.
func (r *Runtime) SetReminders(s ReminderStore) { r.reminders = s }

// reminderMethod is the actor method a reminder's call has, as daprd
// names it: the app is called at /actors/{type}/{id}/method/remind/{name}.
const reminderMethod = "remind/"

// errNoScheduler is daprd's message when no scheduler is configured.
var errNoScheduler = errors.New("reminder scheduler is not configured")

// reminderCheck is daprd's check before any reminder call: this sidecar's
// app hosts the actor type and a scheduler is configured.
func (r *Runtime) reminderCheck(code api.Code, verb, actorType string) error {
	if !r.hosts(actorType) {
		return api.Errorf(api.CodeActorReminderNonHosted, nil, "operations on actor reminders are only possible on hosted actor types")
	}
	if r.reminders == nil {
		return api.Errorf(code, errNoScheduler, "error %s actor reminder: %v", verb, errNoScheduler)
	}
	return nil
}

// validName is daprd's check of a reminder's name (it becomes a path
// segment of the app's URL).
func validName(name string) error {
	if name == "" {
		return errors.New("reminder name cannot be empty")
	}
	if strings.ContainsAny(name, "#?\x00/\\") {
		return fmt.Errorf("name contains forbidden character: %q", name)
	}
	for i := range len(name) {
		if b := name[i]; b < 0x20 || b == 0x7f {
			return fmt.Errorf("name contains control character at position %d: %q", i, name)
		}
	}
	if name == "." || name == ".." {
		return fmt.Errorf("name is a path traversal sequence: %q", name)
	}
	return nil
}

// schedulerPeriod turns a reminder's period into the scheduler's schedule
// and repeats, as daprd does: "@every <duration>", repetitions as repeats
// (0: unbounded). Periods in years, months or days are refused, as daprd
// refuses them.
func schedulerPeriod(period string) (schedule string, repeats uint32, err error) {
	if period == "" {
		return "", 0, nil
	}
	years, months, days, d, n, err := timeutils.ParseDuration(period)
	if err != nil || years > 0 || months > 0 || days > 0 {
		return "", 0, fmt.Errorf("unsupported period format: %s", period)
	}
	if n > 0 {
		repeats = uint32(min(n, int(^uint32(0))))
	}
	return "@every " + d.String(), repeats, nil
}

// CreateReminder creates (or replaces) a reminder of an actor of a type
// this sidecar's app hosts, in the scheduler. Its times are checked here
// (Dapr's formats, as timers) so that a malformed one is refused clearly;
// the scheduler gets them as given.
func (r *Runtime) CreateReminder(ctx context.Context, req *api.ActorReminderRequest) error {
	if err := validName(req.Name); err != nil {
		return api.Errorf(api.CodeBadRequest, err, "invalid request: %v", err)
	}
	if err := r.reminderCheck(api.CodeActorReminderCreate, "creating", req.ActorType); err != nil {
		return err
	}
	if _, err := parseSchedule("reminder", req.DueTime, req.Period, req.TTL, time.Now()); err != nil {
		return api.Errorf(api.CodeActorReminderCreate, err, "error creating actor reminder: %v", err)
	}
	schedule, repeats, err := schedulerPeriod(req.Period)
	if err != nil {
		return api.Errorf(api.CodeActorReminderCreate, err, "error creating actor reminder: %v", err)
	}
	if len(req.Data) > 0 && !json.Valid(req.Data) {
		return api.Errorf(api.CodeMalformedRequest, nil, "reminder data is not JSON")
	}
	overwrite := req.Overwrite == nil || *req.Overwrite
	var policy *scheduler.FailurePolicy
	if p := req.FailurePolicy; p != nil {
		policy = &scheduler.FailurePolicy{Drop: p.Drop, Interval: p.Interval, MaxRetries: p.MaxRetries}
	}
	err = r.reminders.CreateReminder(ctx, &scheduler.Reminder{
		ActorType: req.ActorType, ActorID: req.ActorID, Name: req.Name,
		DueTime: req.DueTime, Period: schedule, Repeats: repeats, TTL: req.TTL,
		Data: req.Data, Overwrite: overwrite, FailurePolicy: policy,
	})
	if errors.Is(err, scheduler.ErrAlreadyExists) {
		return api.Errorf(api.CodeActorReminderAlreadyExists, err, "actor reminder already exists: %s", req.Name)
	}
	if err != nil {
		return api.Errorf(api.CodeActorReminderCreate, err, "error creating actor reminder: %v", err)
	}
	return nil
}

// GetReminder returns a reminder as daprd answers it.
func (r *Runtime) GetReminder(ctx context.Context, actorType, actorID, name string) (*api.ActorReminder, error) {
	if err := r.reminderCheck(api.CodeActorReminderGet, "getting", actorType); err != nil {
		return nil, err
	}
	rem, err := r.reminders.GetReminder(ctx, actorType, actorID, name)
	if err != nil {
		return nil, api.Errorf(api.CodeActorReminderGet, err, "error getting actor reminder: %v", err)
	}
	if rem == nil {
		return nil, api.Errorf(api.CodeActorReminderNotFound, nil, "actor reminder not found: %s", name)
	}
	return answerReminder(rem), nil
}

// answerReminder is a reminder as daprd answers it.
func answerReminder(rem *scheduler.Reminder) *api.ActorReminder {
	out := &api.ActorReminder{ActorID: rem.ActorID, ActorType: rem.ActorType, Data: rem.Data, DueTime: rem.DueTime, Period: rem.Period}
	// daprd shows the ttl only as the expiry time the scheduler keeps.
	if t, err := time.Parse(time.RFC3339Nano, rem.TTL); err == nil {
		out.TTL = t.Format(time.RFC3339Nano)
	}
	return out
}

// ListReminders returns the reminders of an actor type, of one actor when
// actorID is not nil (daprd's ListActorReminders).
func (r *Runtime) ListReminders(ctx context.Context, actorType string, actorID *string) ([]api.NamedActorReminder, error) {
	if err := r.reminderCheck(api.CodeActorReminderGet, "listing", actorType); err != nil {
		return nil, err
	}
	rems, err := r.reminders.ListReminders(ctx, actorType, actorID)
	if err != nil {
		return nil, api.Errorf(api.CodeActorReminderGet, err, "error listing actor reminders: %v", err)
	}
	out := make([]api.NamedActorReminder, len(rems))
	for i, rem := range rems {
		out[i] = api.NamedActorReminder{Name: rem.Name, Reminder: answerReminder(rem)}
	}
	return out, nil
}

// DeleteReminders deletes the reminders of an actor type, of one actor
// when actorID is not nil (daprd's UnregisterActorRemindersByType).
func (r *Runtime) DeleteReminders(ctx context.Context, actorType string, actorID *string) error {
	if err := r.reminderCheck(api.CodeActorReminderDelete, "deleting", actorType); err != nil {
		return err
	}
	if err := r.reminders.DeleteReminders(ctx, actorType, actorID); err != nil {
		return api.Errorf(api.CodeActorReminderDelete, err, "error deleting actor reminder: %v", err)
	}
	return nil
}

// DeleteReminder deletes a reminder; a missing one is no error.
func (r *Runtime) DeleteReminder(ctx context.Context, actorType, actorID, name string) error {
	if err := r.reminderCheck(api.CodeActorReminderDelete, "deleting", actorType); err != nil {
		return err
	}
	if err := r.reminders.DeleteReminder(ctx, actorType, actorID, name); err != nil {
		return api.Errorf(api.CodeActorReminderDelete, err, "error deleting actor reminder: %v", err)
	}
	return nil
}

// reminderCancelHeader, set true by the app in its answer to a reminder,
// ends that trigger as a success (daprd's X-DaprReminderCancel).
const reminderCancelHeader = "X-Daprremindercancel"

// CallReminder runs a reminder the scheduler triggered: the actor's
// PUT /actors/{type}/{id}/method/remind/{name}, in the actor's turn,
// wherever it lives (forwarded to its owner over the sidecar channel as any
// actor call), with daprd's body {"data":…,"dueTime":"","period":""} (daprd
// 1.18 sends its scheduler's reminders with neither time). It is the
// scheduler client's trigger handler: an error fails the trigger, which the
// scheduler tries again by the job's failure policy.
func (r *Runtime) CallReminder(ctx context.Context, t *scheduler.Trigger) error {
	body, err := json.Marshal(struct {
		Data    json.RawMessage `json:"data,omitempty"`
		DueTime string          `json:"dueTime"`
		Period  string          `json:"period"`
	}{Data: t.Data})
	if err != nil {
		return fmt.Errorf("reminder %s of %s: data: %w", t.Name, key(t.ActorType, t.ActorID), err)
	}
	res, err := r.Invoke(ctx, &api.ActorInvokeRequest{
		ActorType: t.ActorType, ActorID: t.ActorID, Method: reminderMethod + t.Name, Verb: "PUT",
		Headers: []api.Header{{Key: "Content-Type", Value: "application/json"}},
		Body:    body,
	})
	if err != nil {
		return err
	}
	for _, h := range res.Headers {
		if strings.EqualFold(h.Key, reminderCancelHeader) {
			if b, _ := strconv.ParseBool(h.Value); b {
				return nil
			}
		}
	}
	if res.Status/100 != 2 {
		return fmt.Errorf("reminder %s of %s: the app answered %d", t.Name, key(t.ActorType, t.ActorID), res.Status)
	}
	return nil
}

// methodPath is an actor method as a path of the app's URL: escaped, but
// for a reminder's call, whose name follows "remind/".
func methodPath(method string) string {
	if name, ok := strings.CutPrefix(method, reminderMethod); ok {
		return reminderMethod + url.PathEscape(name)
	}
	return url.PathEscape(method)
}
