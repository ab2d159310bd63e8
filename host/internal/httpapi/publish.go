package httpapi

import (
	"encoding/json"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/wapr-dev/wapr/host/internal/api"
)

// routePublish serves /v1.0/publish/{pubsub}/{topic…}; the topic may contain
// slashes.
func (s *Server) routePublish(ctx *fasthttp.RequestCtx, rest []string) {
	pubsubName, topic := splitPubSubTopic(rest)
	s.onlyMethods(ctx, func(ctx *fasthttp.RequestCtx, _ string) {
		err := s.api.Publish(requestContext(ctx), &api.PublishRequest{
			PubSub: pubsubName, Topic: topic,
			Data:        append([]byte(nil), ctx.PostBody()...),
			ContentType: string(ctx.Request.Header.ContentType()),
			Metadata:    metadataFromQuery(ctx),
			TraceParent: string(ctx.Request.Header.Peek("traceparent")),
			TraceState:  string(ctx.Request.Header.Peek("tracestate")),
		})
		if err != nil {
			s.writeAPIError(ctx, err)
			return
		}
		ctx.SetStatusCode(fasthttp.StatusNoContent)
	}, "POST", "PUT")(ctx, "")
}

func splitPubSubTopic(rest []string) (pubsubName, topic string) {
	if len(rest) > 0 {
		pubsubName = rest[0]
	}
	if len(rest) > 1 {
		topic = strings.Join(rest[1:], "/")
	}
	return pubsubName, topic
}

type bulkPublishEntry struct {
	EntryID     string            `json:"entryId"`
	Event       json.RawMessage   `json:"event"`
	ContentType string            `json:"contentType"`
	Metadata    map[string]string `json:"metadata"`
}

// routeBulkPublish serves /v1.0[-alpha1]/publish/bulk/{pubsub}/{topic…}.
func (s *Server) routeBulkPublish(ctx *fasthttp.RequestCtx, rest []string) {
	pubsubName, topic := splitPubSubTopic(rest)
	s.onlyMethods(ctx, func(ctx *fasthttp.RequestCtx, _ string) {
		var entries []bulkPublishEntry
		if err := json.Unmarshal(ctx.PostBody(), &entries); err != nil {
			writeError(ctx, fasthttp.StatusBadRequest, "ERR_PUBSUB_EVENTS_SER", "error when unmarshaling the request for topic "+topic+" pubsub "+pubsubName+": "+err.Error())
			return
		}
		in := &api.BulkPublishRequest{
			PubSub: pubsubName, Topic: topic, Metadata: metadataFromQuery(ctx),
			Entries:     make([]api.BulkPublishEntry, len(entries)),
			TraceParent: string(ctx.Request.Header.Peek("traceparent")),
			TraceState:  string(ctx.Request.Header.Peek("tracestate")),
		}
		for i, e := range entries {
			in.Entries[i] = api.BulkPublishEntry{EntryID: e.EntryID, Event: eventBytes(e.Event, e.ContentType), ContentType: e.ContentType, Metadata: e.Metadata}
		}
		if err := s.api.BulkPublish(requestContext(ctx), in); err != nil {
			s.writeAPIError(ctx, err)
			return
		}
		ctx.SetStatusCode(fasthttp.StatusNoContent)
	}, "POST", "PUT")(ctx, "")
}

// eventBytes returns a bulk entry's payload: a JSON string event is sent as
// its text unless the entry is JSON, as daprd does; anything else as JSON.
func eventBytes(ev json.RawMessage, contentType string) []byte {
	if len(ev) > 0 && ev[0] == '"' && !api.IsJSONContentType(contentType) && !strings.HasPrefix(contentType, api.ContentTypeCloudEvent) {
		var s string
		if json.Unmarshal(ev, &s) == nil {
			return []byte(s)
		}
	}
	return ev
}
