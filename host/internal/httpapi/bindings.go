package httpapi

import (
	"bytes"
	"encoding/json"

	"github.com/valyala/fasthttp"

	"github.com/wapr-dev/wapr/host/internal/api"
)

type bindingBody struct {
	Data      json.RawMessage   `json:"data"`
	Metadata  map[string]string `json:"metadata"`
	Operation string            `json:"operation"`
}

func (s *Server) invokeBinding(ctx *fasthttp.RequestCtx, name string) {
	// Decoded as daprd decodes it (a json.Decoder), so the message is
	// daprd's for every body, "EOF" for an empty one included.
	var body bindingBody
	if err := json.NewDecoder(bytes.NewReader(ctx.PostBody())).Decode(&body); err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, "ERR_MALFORMED_REQUEST", "failed deserializing HTTP body: "+err.Error())
		return
	}
	// Trace context travels to the component in metadata, as in daprd.
	for _, h := range [...]string{"traceparent", "tracestate"} {
		if v := ctx.Request.Header.Peek(h); len(v) > 0 {
			if body.Metadata == nil {
				body.Metadata = map[string]string{}
			}
			if _, ok := body.Metadata[h]; !ok {
				body.Metadata[h] = string(v)
			}
		}
	}
	res, err := s.api.InvokeBinding(requestContext(ctx), &api.InvokeBindingRequest{
		Name: name, Operation: body.Operation, Data: body.Data, Metadata: body.Metadata,
	})
	if err != nil {
		s.writeAPIError(ctx, err)
		return
	}
	if res == nil {
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		return
	}
	setMetadataHeaders(ctx, res.Metadata)
	ct := res.ContentType
	if ct == "" {
		ct = "application/json"
	}
	ctx.Response.Header.SetContentType(ct)
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetBody(res.Data)
}
