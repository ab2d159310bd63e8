package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/wapr-dev/wapr/host/internal/actors"
	"github.com/wapr-dev/wapr/host/internal/api"
	"github.com/wapr-dev/wapr/host/internal/internalsgrpc"
)

// serveRemoteReminders makes the reminders another sidecar forwards here
// (a daprd's CallActorReminder: its scheduler connection triggered a
// reminder of an actor placement gives this sidecar) run on rt; nil stops
// them (Unimplemented, as before actors start).
func (h *Host) serveRemoteReminders(rt *actors.Runtime) {
	if h.daprInternals == nil {
		return
	}
	if rt == nil {
		h.daprInternals.SetReminders(nil)
		return
	}
	h.daprInternals.SetReminders(func(ctx context.Context, r *internalsgrpc.Reminder) error {
		return runRemoteReminder(ctx, rt, r)
	})
}

// reminderCancelHeader, true in the app's answer to a reminder, ends it as
// a success (daprd's X-DaprReminderCancel).
const reminderCancelHeader = "X-Daprremindercancel"

// runRemoteReminder calls the actor's PUT
// /actors/{type}/{id}/method/remind/{name} in its turn, if placement gives
// it to this sidecar (else CodeActorNoAddress, daprd's "remote actor
// moved"), with daprd's body {"data":…,"dueTime":…,"period":…}.
func runRemoteReminder(ctx context.Context, rt *actors.Runtime, r *internalsgrpc.Reminder) error {
	if r.IsTimer {
		// daprd keeps timers in memory on the actor's owner: none crosses
		// to another sidecar but workflows'.
		return errors.New("timers are not run for other sidecars")
	}
	body, err := json.Marshal(struct {
		Data    json.RawMessage `json:"data,omitempty"`
		DueTime string          `json:"dueTime"`
		Period  string          `json:"period"`
	}{r.Data, r.DueTime, r.Period})
	if err != nil {
		return err
	}
	res, err := rt.CallLocal(ctx, &api.ActorInvokeRequest{
		ActorType: r.ActorType, ActorID: r.ActorID, Method: "remind/" + r.Name, Verb: "PUT",
		Headers: []api.Header{{Key: "Content-Type", Value: "application/json"}},
		Body:    body,
	})
	if err != nil {
		return err
	}
	for _, kv := range res.Headers {
		if strings.EqualFold(kv.Key, reminderCancelHeader) {
			if b, _ := strconv.ParseBool(kv.Value); b {
				return nil
			}
		}
	}
	if res.Status/100 != 2 {
		return fmt.Errorf("the app answered %d", res.Status)
	}
	return nil
}
