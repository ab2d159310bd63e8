package api

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/pubsub"
	"github.com/wapr-dev/wapr/host/internal/tracing"
)

// CloudEvents content type and the event type Dapr stamps on events it wraps.
const (
	ContentTypeCloudEvent = "application/cloudevents+json"
	EventTypeSent         = "com.dapr.event.sent"
)

// Metadata keys with a meaning to the API rather than to the broker.
const (
	metaRawPayload = "rawPayload"
	metaTTL        = "ttlInSeconds"
	metaCEPrefix   = "cloudevent."
)

// PublishRequest publishes one event.
type PublishRequest struct {
	PubSub      string
	Topic       string
	Data        []byte
	ContentType string // the request's Content-Type
	Metadata    map[string]string
	// TraceParent and TraceState continue the caller's W3C trace, if any.
	TraceParent string
	TraceState  string
}

func (a *API) pubSub(name, topic string) (*PubSub, *Error) {
	snap := a.snapshot.Load()
	if len(snap.PubSubs) == 0 {
		return nil, errorf(CodePubSubNotConfigured, nil, "pubsub %s is not configured", name)
	}
	if name == "" {
		return nil, errorf(CodePubSubEmpty, nil, "pubsub name is empty")
	}
	ps, ok := snap.PubSubs[name]
	if !ok {
		return nil, errorf(CodePubSubNotFound, nil, "pubsub %s is not found", name)
	}
	if topic == "" {
		return nil, errorf(CodeTopicEmpty, nil, "topic is empty in pubsub %s", name)
	}
	if !ps.Gate.Enter() {
		// Retired by a reload: look again in the new snapshot.
		return a.pubSub(name, topic)
	}
	return ps, nil
}

// Publish wraps the payload in a CloudEvent (unless it is one already, or
// rawPayload is set) and hands it to the broker.
func (a *API) Publish(ctx context.Context, in *PublishRequest) error {
	ps, e := a.pubSub(in.PubSub, in.Topic)
	if e != nil {
		return e
	}
	defer ps.Gate.Leave()
	span := a.componentSpan(ctx, "pubsub", "Publish", &ps.Info)
	data, contentType, e := a.envelope(ps, in.Topic, in.Data, in.ContentType, in.Metadata, in.TraceParent, in.TraceState, a.carrier(ctx, span))
	if e != nil {
		endComponent(span, e)
		return e
	}
	tracing.SetAttributes(span, tracing.String("messaging.destination.name", in.Topic))
	err := ps.PubSub.Publish(ctx, &pubsub.PublishRequest{
		Topic: in.Topic, Data: data, ContentType: contentType, Metadata: in.Metadata,
	})
	endComponent(span, err)
	if err != nil {
		return errorf(CodePubSubPublish, err, "error when publishing to topic %s in pubsub %s: %v", in.Topic, in.PubSub, err)
	}
	return nil
}

// envelope returns the bytes to publish and their content type. The
// CloudEvent's traceparent is span's, when the publish is traced (the
// producer span's, or the API call's when its trace is not sampled); else it
// continues the caller's trace (traceParent) with a new span id, or starts
// a new trace.
func (a *API) envelope(ps *PubSub, topic string, data []byte, contentType string, md map[string]string, traceParent, traceState string, span tracing.Span) ([]byte, string, *Error) {
	raw, e := boolMetadata(md, metaRawPayload)
	if e != nil {
		return nil, "", e
	}
	if raw {
		return data, contentType, nil
	}
	var expiration string
	if v, ok := md[metaTTL]; ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return nil, "", errorf(CodePubSubMetadata, err, "%s must be a positive integer, got %q", metaTTL, v)
		}
		if !component.HasFeature(ps.Features, pubsub.FeatureMessageTTL) {
			expiration = time.Now().UTC().Add(time.Duration(n) * time.Second).Format(time.RFC3339)
		}
	}
	if span != nil {
		traceParent, traceState = tracing.Headers(span)
	} else {
		traceParent = newTraceParent(traceParent)
	}
	ce := cloudEvent{
		id: md[metaCEPrefix+"id"], source: md[metaCEPrefix+"source"], typ: md[metaCEPrefix+"type"],
		subject: md[metaCEPrefix+"subject"], topic: topic, pubsub: ps.Name,
		traceParent: firstNonEmpty(md[metaCEPrefix+"traceparent"], md[metaCEPrefix+"traceid"], traceParent),
		traceState:  firstNonEmpty(md[metaCEPrefix+"tracestate"], traceState),
		expiration:  expiration,
	}
	if ce.source == "" {
		ce.source = firstNonEmpty(a.appID, "Dapr")
	}
	if isCloudEventContentType(contentType) {
		out, err := ce.complete(data)
		if err != nil {
			return nil, "", errorf(CodePubSubCloudEvents, err, "cannot create cloudevent")
		}
		return out, ContentTypeCloudEvent, nil
	}
	if contentType == "" {
		contentType = "text/plain"
	}
	ce.dataContentType = contentType
	return ce.wrap(data), ContentTypeCloudEvent, nil
}

func boolMetadata(md map[string]string, key string) (bool, *Error) {
	v, ok := md[key]
	if !ok || v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, errorf(CodePubSubMetadata, err, "failed deserializing metadata. Error: %s value must be a valid boolean: actual is '%s'", key, v)
	}
	return b, nil
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

func mediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(ct))
}

func isCloudEventContentType(ct string) bool { return mediaType(ct) == ContentTypeCloudEvent }

// IsJSONContentType reports whether ct is application/json or a +json type.
func IsJSONContentType(ct string) bool {
	mt := mediaType(ct)
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

func isBinaryContentType(ct string) bool {
	switch mediaType(ct) {
	case "application/octet-stream", "application/x-protobuf", "application/protobuf":
		return true
	}
	return false
}

// cloudEvent holds the attributes the sidecar sets on an event.
type cloudEvent struct {
	id, source, typ, subject    string
	topic, pubsub               string
	traceParent, traceState     string
	dataContentType, expiration string
}

// wrap builds a new CloudEvent 1.0 around data. JSON payloads are embedded as
// they are (numbers keep their precision), binary ones go to data_base64 and
// anything else becomes a JSON string.
func (ce *cloudEvent) wrap(data []byte) []byte {
	b := make([]byte, 0, len(data)+384)
	b = append(b, `{"specversion":"1.0","id":`...)
	b = appendJSONString(b, firstNonEmpty(ce.id, NewUUID()))
	b = append(b, `,"source":`...)
	b = appendJSONString(b, ce.source)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, firstNonEmpty(ce.typ, EventTypeSent))
	b = append(b, `,"datacontenttype":`...)
	b = appendJSONString(b, ce.dataContentType)
	if ce.subject != "" {
		b = append(b, `,"subject":`...)
		b = appendJSONString(b, ce.subject)
	}
	b = append(b, `,"topic":`...)
	b = appendJSONString(b, ce.topic)
	b = append(b, `,"pubsubname":`...)
	b = appendJSONString(b, ce.pubsub)
	b = append(b, `,"traceid":`...)
	b = appendJSONString(b, ce.traceParent)
	b = append(b, `,"traceparent":`...)
	b = appendJSONString(b, ce.traceParent)
	b = append(b, `,"tracestate":`...)
	b = appendJSONString(b, ce.traceState)
	b = append(b, `,"time":`...)
	b = appendJSONString(b, time.Now().UTC().Format(time.RFC3339Nano))
	if ce.expiration != "" {
		b = append(b, `,"expiration":`...)
		b = appendJSONString(b, ce.expiration)
	}
	switch {
	case IsJSONContentType(ce.dataContentType) && json.Valid(data):
		b = append(b, `,"data":`...)
		b = append(b, data...)
	case isBinaryContentType(ce.dataContentType):
		b = append(b, `,"data_base64":"`...)
		b = base64.StdEncoding.AppendEncode(b, data)
		b = append(b, '"')
	default:
		b = append(b, `,"data":`...)
		b = appendJSONString(b, string(data))
	}
	return append(b, '}')
}

// complete fills in the attributes an app-supplied CloudEvent lacks and
// overwrites topic and pubsubname, keeping every other field as sent.
func (ce *cloudEvent) complete(data []byte) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errNotAnObject
	}
	setDefault := func(k, v string) {
		if _, ok := m[k]; !ok {
			m[k] = jsonString(v)
		}
	}
	if ce.id != "" {
		m["id"] = jsonString(ce.id)
	}
	setDefault("id", NewUUID())
	setDefault("specversion", "1.0")
	setDefault("source", ce.source)
	setDefault("type", firstNonEmpty(ce.typ, EventTypeSent))
	setDefault("datacontenttype", "application/json")
	setDefault("traceid", ce.traceParent)
	setDefault("traceparent", ce.traceParent)
	setDefault("tracestate", ce.traceState)
	setDefault("time", time.Now().UTC().Format(time.RFC3339Nano))
	if ce.expiration != "" {
		setDefault("expiration", ce.expiration)
	}
	m["topic"] = jsonString(ce.topic)
	m["pubsubname"] = jsonString(ce.pubsub)
	return json.Marshal(m)
}

type ceError string

func (e ceError) Error() string { return string(e) }

const errNotAnObject = ceError("a cloud event must be a JSON object")

func jsonString(s string) json.RawMessage { return appendJSONString(nil, s) }

// appendJSONString appends s as a JSON string literal.
func appendJSONString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	if !utf8.ValidString(s) {
		enc, _ := json.Marshal(s) // replaces invalid bytes with U+FFFD
		return append(b, enc...)
	}
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' && c < 0x80 {
			continue
		}
		if c >= 0x80 {
			continue // valid UTF-8 passes through
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// NewUUID returns a random (version 4) UUID.
func NewUUID() string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:], u[10:])
	return string(s[:])
}

// newTraceParent returns a W3C traceparent for a new span: in the trace of
// parent when parent is a valid traceparent, else in a new trace.
func newTraceParent(parent string) string {
	var span [8]byte
	_, _ = rand.Read(span[:])
	traceID := ""
	if len(parent) == 55 && parent[2] == '-' && parent[35] == '-' && parent[52] == '-' {
		traceID = parent[3:35]
	} else {
		var t [16]byte
		_, _ = rand.Read(t[:])
		traceID = hex.EncodeToString(t[:])
	}
	return "00-" + traceID + "-" + hex.EncodeToString(span[:]) + "-01"
}

// BulkPublishEntry is one event of a bulk publish.
type BulkPublishEntry struct {
	EntryID     string
	Event       []byte
	ContentType string
	Metadata    map[string]string
}

// BulkPublishRequest publishes several events to one topic.
type BulkPublishRequest struct {
	PubSub      string
	Topic       string
	Entries     []BulkPublishEntry
	Metadata    map[string]string
	TraceParent string
	TraceState  string
}

// FailedEntry is an entry a bulk publish could not send.
type FailedEntry struct {
	EntryID string
	Error   string
}

// BulkPublish publishes every entry. When some fail it returns an *Error with
// CodeBulkPublish listing them.
func (a *API) BulkPublish(ctx context.Context, in *BulkPublishRequest) error {
	ps, e := a.pubSub(in.PubSub, in.Topic)
	if e != nil {
		return e
	}
	defer ps.Gate.Leave()
	span := a.componentSpan(ctx, "pubsub", "BulkPublish", &ps.Info)
	tracing.SetAttributes(span, tracing.String("messaging.destination.name", in.Topic), tracing.Int("messaging.batch.message_count", len(in.Entries)))
	err := a.bulkPublish(ctx, ps, in, a.carrier(ctx, span))
	endComponent(span, err)
	return err
}

// bulkPublish is BulkPublish once the broker is found; every event carries
// span's trace context, when the publish is traced.
func (a *API) bulkPublish(ctx context.Context, ps *PubSub, in *BulkPublishRequest, span tracing.Span) error {
	seen := make(map[string]struct{}, len(in.Entries))
	req := &pubsub.BulkPublishRequest{Topic: in.Topic, Metadata: in.Metadata, Entries: make([]pubsub.BulkEntry, len(in.Entries))}
	for i, en := range in.Entries {
		if en.EntryID == "" {
			return errorf(CodeMalformedRequest, nil, "entryId is duplicated or not present for entry %d", i)
		}
		if _, dup := seen[en.EntryID]; dup {
			return errorf(CodeMalformedRequest, nil, "entryId %s is duplicated", en.EntryID)
		}
		seen[en.EntryID] = struct{}{}
		md := mergeMetadata(en.Metadata, in.Metadata)
		data, ct, e := a.envelope(ps, in.Topic, en.Event, en.ContentType, md, in.TraceParent, in.TraceState, span)
		if e != nil {
			return e
		}
		req.Entries[i] = pubsub.BulkEntry{EntryID: en.EntryID, Data: data, ContentType: ct, Metadata: md}
	}
	var failed []FailedEntry
	if ps.Bulk != nil {
		res, err := ps.Bulk.BulkPublish(ctx, req)
		if err != nil && len(res.Failed) == 0 {
			for _, en := range req.Entries {
				failed = append(failed, FailedEntry{EntryID: en.EntryID, Error: err.Error()})
			}
		}
		for _, f := range res.Failed {
			failed = append(failed, FailedEntry{EntryID: f.EntryID, Error: f.Err.Error()})
		}
	} else {
		for _, en := range req.Entries {
			err := ps.PubSub.Publish(ctx, &pubsub.PublishRequest{Topic: in.Topic, Data: en.Data, ContentType: en.ContentType, Metadata: en.Metadata})
			if err != nil {
				failed = append(failed, FailedEntry{EntryID: en.EntryID, Error: err.Error()})
			}
		}
	}
	if len(failed) > 0 {
		e := errorf(CodeBulkPublish, nil, "error when publishing %d of %d entries to topic %s in pubsub %s", len(failed), len(in.Entries), in.Topic, in.PubSub)
		e.FailedEntries = failed
		return e
	}
	return nil
}
