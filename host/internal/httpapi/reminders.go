package httpapi

import (
	"encoding/json"

	"github.com/valyala/fasthttp"

	"github.com/wapr-dev/wapr/host/internal/api"
)

// routeActorReminder serves /v1.0/actors/{type}/{id}/reminders/{name} as
// daprd 1.18: POST or PUT creates, GET reads, DELETE deletes.
func (s *Server) routeActorReminder(ctx *fasthttp.RequestCtx, method, actorType, actorID, name string) bool {
	switch method {
	case "POST", "PUT":
		s.createActorReminder(ctx, actorType, actorID, name)
	case "GET":
		r, err := s.api.GetActorReminder(requestContext(ctx), actorType, actorID, name)
		if err != nil {
			s.writeAPIError(ctx, err)
			return true
		}
		body, err := json.Marshal(r)
		if err != nil {
			s.writeAPIError(ctx, &api.Error{Code: api.CodeActorReminderGet, Message: "error getting actor reminder: " + err.Error(), Err: err})
			return true
		}
		ctx.Response.Header.SetContentType("application/json")
		ctx.SetStatusCode(fasthttp.StatusOK)
		ctx.SetBody(body)
	case "DELETE":
		if err := s.api.DeleteActorReminder(requestContext(ctx), actorType, actorID, name); err != nil {
			s.writeAPIError(ctx, err)
			return true
		}
		ctx.SetStatusCode(fasthttp.StatusNoContent)
	default:
		return false
	}
	return true
}

// reminderBody is daprd's CreateReminderRequest as JSON.
type reminderBody struct {
	DueTime   string          `json:"dueTime"`
	Period    string          `json:"period"`
	TTL       string          `json:"ttl"`
	Data      json.RawMessage `json:"data"`
	Overwrite *bool           `json:"overwrite"`
}

func (s *Server) createActorReminder(ctx *fasthttp.RequestCtx, actorType, actorID, name string) {
	var b reminderBody
	// daprd decodes the body whatever it is: an empty one is malformed.
	if err := json.Unmarshal(ctx.PostBody(), &b); err != nil {
		s.writeAPIError(ctx, &api.Error{Code: api.CodeMalformedRequest, Message: "failed deserializing HTTP body: " + err.Error(), Err: err})
		return
	}
	err := s.api.CreateActorReminder(requestContext(ctx), &api.ActorReminderRequest{
		ActorType: actorType, ActorID: actorID, Name: name,
		DueTime: b.DueTime, Period: b.Period, TTL: b.TTL, Overwrite: b.Overwrite,
		// Unmarshal copied it out of the request.
		Data: b.Data,
	})
	if err != nil {
		s.writeAPIError(ctx, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}
