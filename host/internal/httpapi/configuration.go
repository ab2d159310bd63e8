package httpapi

import (
	"github.com/valyala/fasthttp"

	"github.com/wapr-dev/wapr/host/internal/api"
)

// routeConfiguration serves, under v1.0 and v1.0-alpha1, all with GET:
// /configuration/{store}, /configuration/{store}/subscribe and
// /configuration/{store}/{id}/unsubscribe.
func (s *Server) routeConfiguration(ctx *fasthttp.RequestCtx, rest []string) bool {
	if !ctx.IsGet() {
		return false
	}
	switch {
	case len(rest) == 1:
		s.getConfiguration(ctx, rest[0])
	case len(rest) == 2 && rest[1] == "subscribe":
		s.subscribeConfiguration(ctx, rest[0])
	case len(rest) == 3 && rest[2] == "unsubscribe":
		s.unsubscribeConfiguration(ctx, rest[0], rest[1])
	default:
		return false
	}
	return true
}

// queryKeys returns the values of every key= query parameter, copied.
func queryKeys(ctx *fasthttp.RequestCtx) []string {
	var keys []string
	for _, v := range ctx.QueryArgs().PeekMulti("key") {
		keys = append(keys, string(v))
	}
	return keys
}

func (s *Server) getConfiguration(ctx *fasthttp.RequestCtx, store string) {
	items, err := s.api.GetConfiguration(requestContext(ctx), &api.GetConfigurationRequest{
		Store: store, Keys: queryKeys(ctx), Metadata: metadataFromQuery(ctx),
	})
	if err != nil {
		s.writeAPIError(ctx, err)
		return
	}
	if len(items) == 0 {
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, items)
}

func (s *Server) subscribeConfiguration(ctx *fasthttp.RequestCtx, store string) {
	id, err := s.api.SubscribeConfiguration(requestContext(ctx), &api.SubscribeConfigurationRequest{
		Store: store, Keys: queryKeys(ctx), Metadata: metadataFromQuery(ctx),
	})
	if err != nil {
		s.writeAPIError(ctx, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, struct {
		ID string `json:"id"`
	}{id})
}

// unsubscribeResponse is daprd's answer: {"ok":true}, or on failure a 500
// with only the message (its ok:false is left out by omitempty).
type unsubscribeResponse struct {
	OK      bool   `json:"ok,omitempty"`
	Message string `json:"message,omitempty"`
}

func (s *Server) unsubscribeConfiguration(ctx *fasthttp.RequestCtx, store, id string) {
	err := s.api.UnsubscribeConfiguration(requestContext(ctx), &api.UnsubscribeConfigurationRequest{Store: store, ID: id})
	if err == nil {
		writeJSON(ctx, fasthttp.StatusOK, unsubscribeResponse{OK: true})
		return
	}
	if e := api.AsError(err); e.Code == api.CodeConfigurationUnsubscribe {
		writeJSON(ctx, fasthttp.StatusInternalServerError, unsubscribeResponse{Message: e.Message})
		return
	}
	s.writeAPIError(ctx, err)
}
