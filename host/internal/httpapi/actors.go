package httpapi

import (
	"encoding/json"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/wapr-dev/wapr/host/internal/api"
)

// routeActors serves /v1.0/actors/{type}/{id}/…: method calls, actor state
// and timers, as daprd 1.18 routes them. It reports false for a path or
// method it does not serve (the caller falls back).
func (s *Server) routeActors(ctx *fasthttp.RequestCtx, rest []string) bool {
	if len(rest) < 3 || rest[0] == "" || rest[1] == "" {
		return false
	}
	actorType, actorID, what := rest[0], rest[1], rest[2]
	m := string(ctx.Method())
	switch {
	case what == "method" && len(rest) >= 4:
		switch m {
		case "GET", "POST", "PUT", "DELETE":
			s.invokeActor(ctx, actorType, actorID, strings.Join(rest[3:], "/"))
			return true
		}
	case what == "state" && len(rest) == 3 && (m == "POST" || m == "PUT"):
		s.actorStateTransaction(ctx, actorType, actorID)
		return true
	case what == "state" && len(rest) == 4 && m == "GET":
		s.getActorState(ctx, actorType, actorID, rest[3])
		return true
	case what == "timers" && len(rest) == 4 && (m == "POST" || m == "PUT"):
		s.createActorTimer(ctx, actorType, actorID, rest[3])
		return true
	case what == "reminders" && len(rest) == 4:
		return s.routeActorReminder(ctx, m, actorType, actorID, rest[3])
	case what == "timers" && len(rest) == 4 && m == "DELETE":
		if err := s.api.DeleteActorTimer(requestContext(ctx), actorType, actorID, rest[3]); err != nil {
			s.writeAPIError(ctx, err)
			return true
		}
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		return true
	}
	return false
}

func (s *Server) invokeActor(ctx *fasthttp.RequestCtx, actorType, actorID, method string) {
	res, err := s.api.InvokeActor(requestContext(ctx), &api.ActorInvokeRequest{
		ActorType: actorType, ActorID: actorID, Method: method,
		Verb:    string(ctx.Method()),
		Query:   string(ctx.URI().QueryString()),
		Headers: requestHeaders(&ctx.Request.Header),
		// The runtime does not keep the body past the call.
		Body: ctx.PostBody(),
	})
	if err != nil {
		s.writeAPIError(ctx, err)
		return
	}
	writeInvokeResponse(ctx, res)
}

func (s *Server) getActorState(ctx *fasthttp.RequestCtx, actorType, actorID, key string) {
	res, err := s.api.GetActorState(requestContext(ctx), &api.ActorStateRequest{ActorType: actorType, ActorID: actorID, Key: key})
	if err != nil {
		s.writeAPIError(ctx, err)
		return
	}
	if res == nil || len(res.Data) == 0 {
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		return
	}
	setMetadataHeaders(ctx, res.Metadata)
	ctx.Response.Header.SetContentType("application/json")
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetBody(res.Data)
}

func (s *Server) actorStateTransaction(ctx *fasthttp.RequestCtx, actorType, actorID string) {
	var ops []api.ActorStateOperation
	if err := json.Unmarshal(ctx.PostBody(), &ops); err != nil {
		s.writeAPIError(ctx, &api.Error{Code: api.CodeMalformedRequest, Message: "failed deserializing HTTP body: " + err.Error(), Err: err})
		return
	}
	err := s.api.ActorStateTransaction(requestContext(ctx), &api.ActorTransactionRequest{ActorType: actorType, ActorID: actorID, Operations: ops})
	if err != nil {
		s.writeAPIError(ctx, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

// timerBody is daprd's CreateTimerRequest as JSON.
type timerBody struct {
	DueTime  string          `json:"dueTime"`
	Period   string          `json:"period"`
	TTL      string          `json:"ttl"`
	Callback string          `json:"callback"`
	Data     json.RawMessage `json:"data"`
}

func (s *Server) createActorTimer(ctx *fasthttp.RequestCtx, actorType, actorID, name string) {
	var b timerBody
	if body := ctx.PostBody(); len(body) > 0 {
		if err := json.Unmarshal(body, &b); err != nil {
			s.writeAPIError(ctx, &api.Error{Code: api.CodeMalformedRequest, Message: "failed deserializing HTTP body: " + err.Error(), Err: err})
			return
		}
	}
	err := s.api.CreateActorTimer(requestContext(ctx), &api.ActorTimerRequest{
		ActorType: actorType, ActorID: actorID, Name: name,
		DueTime: b.DueTime, Period: b.Period, TTL: b.TTL, Callback: b.Callback,
		// Unmarshal copied it out of the request.
		Data: b.Data,
	})
	if err != nil {
		s.writeAPIError(ctx, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}
