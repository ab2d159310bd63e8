package httpapi

import (
	"github.com/valyala/fasthttp"

	"github.com/wapr-dev/wapr/host/internal/api"
)

// routeSecrets serves GET /v1.0/secrets/{store}/{name} and
// GET /v1.0/secrets/{store}/bulk.
func (s *Server) routeSecrets(ctx *fasthttp.RequestCtx, rest []string) bool {
	if len(rest) != 2 || !ctx.IsGet() {
		return false
	}
	if rest[1] == "bulk" {
		s.bulkGetSecret(ctx, rest[0])
		return true
	}
	data, err := s.api.GetSecret(requestContext(ctx), &api.GetSecretRequest{
		Store: rest[0], Name: rest[1], Metadata: metadataFromQuery(ctx),
	})
	if err != nil {
		s.writeAPIError(ctx, err)
		return true
	}
	if data == nil {
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		return true
	}
	writeJSON(ctx, fasthttp.StatusOK, data)
	return true
}

func (s *Server) bulkGetSecret(ctx *fasthttp.RequestCtx, store string) {
	data, err := s.api.BulkGetSecret(requestContext(ctx), &api.BulkGetSecretRequest{
		Store: store, Metadata: metadataFromQuery(ctx),
	})
	if err != nil {
		s.writeAPIError(ctx, err)
		return
	}
	if data == nil {
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, data)
}
