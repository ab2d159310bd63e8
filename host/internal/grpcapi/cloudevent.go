package grpcapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	runtimev1pb "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/wapr-dev/wapr/host/internal/api"
)

// appCloudEventCore are the CloudEvent attributes TopicEventRequest has fields
// for; every other attribute is an extension (as daprd splits them).
var appCloudEventCore = []string{"id", "source", "type", "specversion", "datacontenttype", "data", "data_base64"}

// topicEventRequest takes the CloudEvent of a delivery apart into the
// TopicEventRequest daprd sends a gRPC app (OnTopicEvent) or a streaming
// subscription: the attributes go to their fields, data_base64 is decoded,
// the other fields (topic, pubsubname, traceparent, time, …) are
// extensions; topic and pubsub name are the subscription's, path is given.
// An error means the message cannot be delivered as it is; daprd retries it.
func topicEventRequest(req *api.AppRequest, path string) (*runtimev1pb.TopicEventRequest, error) {
	var ce map[string]json.RawMessage
	if err := json.Unmarshal(req.Body, &ce); err != nil {
		return nil, fmt.Errorf("the message is not a CloudEvent: %w", err)
	}
	str := func(k string) string {
		var s string
		if json.Unmarshal(ce[k], &s) != nil {
			return ""
		}
		return s
	}
	out := &runtimev1pb.TopicEventRequest{
		Id: str("id"), Source: str("source"), Type: str("type"),
		SpecVersion: str("specversion"), DataContentType: str("datacontenttype"),
		Topic: req.Topic, PubsubName: req.PubSub, Path: path,
	}
	if raw, ok := ce["data_base64"]; ok && !appJSONNull(raw) {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, errors.New("the CloudEvent's data_base64 is not a string")
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("the CloudEvent's data_base64: %w", err)
		}
		out.Data = b
	} else if raw, ok := ce["data"]; ok && !appJSONNull(raw) {
		ct := out.DataContentType
		switch {
		case appIsStringContentType(ct):
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return nil, fmt.Errorf("the CloudEvent's data is not a string though its content type is %s", ct)
			}
			out.Data = []byte(s)
		case ct == "", appIsContentType(ct, "application/json"), appIsContentType(ct, api.ContentTypeCloudEvent):
			// A CloudEvent without datacontenttype carries JSON.
			// daprd re-encodes the decoded value; the JSON text as
			// published is the same value, without float rounding.
			var b bytes.Buffer
			if err := json.Compact(&b, raw); err != nil {
				return nil, err
			}
			out.Data = b.Bytes()
		}
		// daprd passes no data for other content types.
	}
	ext := make(map[string]any, len(ce))
	for k, raw := range ce {
		if slices.Contains(appCloudEventCore, k) {
			continue
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, err
		}
		ext[k] = v
	}
	var err error
	if out.Extensions, err = structpb.NewStruct(ext); err != nil {
		return nil, fmt.Errorf("the CloudEvent's extensions: %w", err)
	}
	return out, nil
}

func appJSONNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// appIsContentType and appIsStringContentType match media types as daprd does
// (components-contrib's contenttype package).
func appIsContentType(ct, want string) bool {
	ct = strings.ToLower(ct)
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return ct == want
}

func appIsStringContentType(ct string) bool {
	return strings.HasPrefix(strings.ToLower(ct), "text/") || appIsContentType(ct, "application/xml")
}
