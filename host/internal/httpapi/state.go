package httpapi

import (
	"encoding/json"

	"github.com/valyala/fasthttp"

	"github.com/wapr-dev/wapr/host/component/state"
	"github.com/wapr-dev/wapr/host/internal/api"
)

// routeState serves /v1.0/state/{store}[/{key}|/bulk|/transaction].
func (s *Server) routeState(ctx *fasthttp.RequestCtx, rest []string) {
	switch len(rest) {
	case 1:
		s.onlyMethods(ctx, s.saveState, "POST", "PUT")(ctx, rest[0])
		return
	case 2:
		store, key := rest[0], rest[1]
		m := string(ctx.Method())
		switch {
		case m == "GET":
			s.getState(ctx, store, key)
			return
		case m == "DELETE":
			s.deleteState(ctx, store, key)
			return
		case (m == "POST" || m == "PUT") && key == "bulk":
			s.bulkGetState(ctx, store)
			return
		case (m == "POST" || m == "PUT") && key == "transaction":
			s.transaction(ctx, store)
			return
		}
	}
	s.fallback(ctx)
}

func (s *Server) getState(ctx *fasthttp.RequestCtx, store, key string) {
	res, err := s.api.GetState(requestContext(ctx), &api.GetStateRequest{
		Store: store, Key: key,
		Consistency: string(ctx.QueryArgs().Peek("consistency")),
		Metadata:    metadataFromQuery(ctx),
	})
	if err != nil {
		s.writeAPIError(ctx, err)
		return
	}
	if res == nil {
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		return
	}
	if res.ETag != "" {
		ctx.Response.Header.Set("ETag", res.ETag)
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

// stateItem is one element of a save request body (Dapr's JSON shape).
type stateItem struct {
	Key      string            `json:"key"`
	Value    json.RawMessage   `json:"value"`
	ETag     *string           `json:"etag,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
	Options  *stateOptions     `json:"options,omitempty"`
}

type stateOptions struct {
	Concurrency string `json:"concurrency,omitempty"`
	Consistency string `json:"consistency,omitempty"`
}

func (o *stateOptions) toState() state.Options {
	if o == nil {
		return state.Options{}
	}
	return state.Options{Concurrency: o.Concurrency, Consistency: o.Consistency}
}

var jsonNull = []byte("null")

// valueBytes returns the JSON encoding of a value to store. RawMessage
// already holds a copy of the request bytes.
func valueBytes(v json.RawMessage) []byte {
	if len(v) == 0 {
		return jsonNull
	}
	return v
}

func (s *Server) saveState(ctx *fasthttp.RequestCtx, store string) {
	items, err := decodeStateItems(ctx.PostBody())
	if err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, "ERR_MALFORMED_REQUEST", "failed to parse the request body as a JSON array of state items: "+err.Error())
		return
	}
	in := &api.SaveStateRequest{Store: store, Items: make([]api.SaveStateItem, len(items)), Metadata: metadataFromQuery(ctx)}
	for i := range items {
		it := &items[i]
		in.Items[i] = api.SaveStateItem{
			Key: it.Key, Value: valueBytes(it.Value), ETag: it.ETag, Metadata: it.Metadata, Options: it.Options.toState(),
		}
	}
	if err := s.api.SaveState(requestContext(ctx), in); err != nil {
		s.writeAPIError(ctx, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

func (s *Server) deleteState(ctx *fasthttp.RequestCtx, store, key string) {
	in := &api.DeleteStateRequest{
		Store: store, Key: key, Metadata: metadataFromQuery(ctx),
		Options: state.Options{
			Concurrency: string(ctx.QueryArgs().Peek("concurrency")),
			Consistency: string(ctx.QueryArgs().Peek("consistency")),
		},
	}
	// Presence matters: an empty If-Match is an empty ETag, not none.
	if v := ctx.Request.Header.Peek("If-Match"); v != nil {
		etag := string(v)
		in.ETag = &etag
	}
	if err := s.api.DeleteState(requestContext(ctx), in); err != nil {
		s.writeAPIError(ctx, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

type bulkGetBody struct {
	Keys        []string          `json:"keys"`
	Parallelism int               `json:"parallelism"`
	Metadata    map[string]string `json:"metadata"`
}

type bulkGetItem struct {
	Key      string            `json:"key"`
	Data     json.RawMessage   `json:"data,omitempty"`
	ETag     *string           `json:"etag,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
	Error    string            `json:"error,omitempty"`
}

func (s *Server) bulkGetState(ctx *fasthttp.RequestCtx, store string) {
	var body bulkGetBody
	if err := json.Unmarshal(ctx.PostBody(), &body); err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, "ERR_MALFORMED_REQUEST", "failed to parse the bulk get request: "+err.Error())
		return
	}
	md := body.Metadata
	if q := metadataFromQuery(ctx); q != nil {
		if md == nil {
			md = q
		} else {
			for k, v := range q {
				md[k] = v
			}
		}
	}
	items, err := s.api.BulkGetState(requestContext(ctx), &api.BulkGetStateRequest{Store: store, Keys: body.Keys, Parallelism: body.Parallelism, Metadata: md})
	if err != nil {
		s.writeAPIError(ctx, err)
		return
	}
	out := make([]bulkGetItem, len(items))
	for i, it := range items {
		out[i] = bulkGetItem{Key: it.Key, Metadata: it.Metadata, Error: it.Error}
		if it.Data != nil {
			out[i].Data = jsonValue(it.Data)
		}
		if it.ETag != "" {
			etag := it.ETag
			out[i].ETag = &etag
		}
	}
	writeJSON(ctx, fasthttp.StatusOK, out)
}

// jsonValue returns stored bytes for embedding in a JSON response: as they
// are when they are JSON, else as a JSON string.
func jsonValue(b []byte) json.RawMessage {
	if json.Valid(b) {
		return b
	}
	enc, _ := json.Marshal(string(b))
	return enc
}

type transactionBody struct {
	Operations []struct {
		Operation string    `json:"operation"`
		Request   stateItem `json:"request"`
	} `json:"operations"`
	Metadata map[string]string `json:"metadata"`
}

func (s *Server) transaction(ctx *fasthttp.RequestCtx, store string) {
	var body transactionBody
	if err := json.Unmarshal(ctx.PostBody(), &body); err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, "ERR_MALFORMED_REQUEST", "failed to parse the transaction request: "+err.Error())
		return
	}
	in := &api.TransactionRequest{Store: store, Metadata: body.Metadata, Operations: make([]api.TransactionOperation, len(body.Operations))}
	if q := metadataFromQuery(ctx); q != nil {
		if in.Metadata == nil {
			in.Metadata = q
		} else {
			for k, v := range q {
				in.Metadata[k] = v
			}
		}
	}
	for i, op := range body.Operations {
		r := op.Request
		in.Operations[i] = api.TransactionOperation{
			Operation: op.Operation, Key: r.Key, ETag: r.ETag, Metadata: r.Metadata, Options: r.Options.toState(),
		}
		if op.Operation == "upsert" {
			in.Operations[i].Value = valueBytes(r.Value)
		}
	}
	if err := s.api.Transaction(requestContext(ctx), in); err != nil {
		s.writeAPIError(ctx, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}
