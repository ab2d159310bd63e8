package kafkaclient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/wapr-dev/wapr/builtin/internal/kafkaclient"
	"github.com/wapr-dev/wapr/host/component"
)

func TestReadConfigDefaults(t *testing.T) {
	r := component.NewConfigReader(component.Metadata{Properties: map[string]string{"brokers": "a:9092, b:9093", "consumerID": "app-1"}})
	c := kafkaclient.ReadConfig(r)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	want := kafkaclient.Config{
		Brokers:           []string{"a:9092", "b:9093"},
		ClientID:          "wapr",
		ConsumerGroup:     "app-1",
		StartOffset:       kafka.LastOffset,
		MaxMessageBytes:   1 << 20,
		RetryInterval:     100 * time.Millisecond,
		HeartbeatInterval: 3 * time.Second,
		SessionTimeout:    10 * time.Second,
	}
	if fmt.Sprint(c) != fmt.Sprint(want) {
		t.Errorf("ReadConfig = %+v, want %+v", c, want)
	}

	r = component.NewConfigReader(component.Metadata{Properties: map[string]string{"brokers": "a:1", "consumerID": "app-1", "consumerGroup": "g"}})
	if c := kafkaclient.ReadConfig(r); c.ConsumerGroup != "g" {
		t.Errorf("ConsumerGroup = %q, want consumerGroup to win over consumerID", c.ConsumerGroup)
	}
}

func TestNewMessage(t *testing.T) {
	tests := []struct {
		name    string
		md      map[string]string
		key     string
		headers map[string]string
	}{
		{name: "nil metadata", headers: map[string]string{}},
		{name: "partitionKey", md: map[string]string{"partitionKey": "p", "h": "v"}, key: "p", headers: map[string]string{"h": "v"}},
		{name: "key", md: map[string]string{"KEY": "k"}, key: "k", headers: map[string]string{}},
		{name: "partitionKey wins", md: map[string]string{"key": "k", "partitionkey": "p"}, key: "p", headers: map[string]string{}},
		{name: "empty partitionKey falls back to key", md: map[string]string{"key": "k", "partitionKey": ""}, key: "k", headers: map[string]string{}},
		{name: "empty key means none", md: map[string]string{"partitionKey": ""}, headers: map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := kafkaclient.NewMessage("t", []byte("data"), tt.md)
			if m.Topic != "t" || string(m.Value) != "data" || m.Time.IsZero() {
				t.Errorf("message %+v, want topic t, value data and a timestamp", m)
			}
			if (tt.key == "") != (m.Key == nil) || string(m.Key) != tt.key {
				t.Errorf("key %q (nil %v), want %q", m.Key, m.Key == nil, tt.key)
			}
			got := map[string]string{}
			for _, h := range m.Headers {
				got[h.Key] = string(h.Value)
			}
			if !maps.Equal(got, tt.headers) {
				t.Errorf("headers %v, want %v", got, tt.headers)
			}
		})
	}
}

func TestEventMetadata(t *testing.T) {
	m := &kafka.Message{
		Topic: "orders", Partition: 2, Offset: 41, Key: []byte("k/1"),
		Time:    time.UnixMilli(1700000000123),
		Headers: []kafka.Header{{Key: "h", Value: []byte("a b")}, {Key: "topic", Value: []byte("spoofed")}},
	}
	tests := []struct {
		name    string
		keyName string
		escape  bool
		want    map[string]string
	}{
		{name: "plain", keyName: "partitionKey", want: map[string]string{
			"h": "a b", "topic": "orders", "partition": "2", "offset": "41", "partitionKey": "k/1",
			"__topic": "orders", "__partition": "2", "__offset": "41", "__key": "k/1", "__timestamp": "1700000000123",
		}},
		{name: "escaped", keyName: "key", escape: true, want: map[string]string{
			"h": "a+b", "topic": "orders", "partition": "2", "offset": "41", "key": "k%2F1",
			"__topic": "orders", "__partition": "2", "__offset": "41", "__key": "k%2F1", "__timestamp": "1700000000123",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := kafkaclient.EventMetadata(m, tt.keyName, tt.escape); !maps.Equal(got, tt.want) {
				t.Errorf("EventMetadata = %v, want %v", got, tt.want)
			}
		})
	}
	if md := kafkaclient.EventMetadata(&kafka.Message{Topic: "t"}, "key", false); md["key"] != "" || md["__key"] != "" || md["__timestamp"] != "" {
		t.Errorf("a message without key or time got %v", md)
	}
}

func TestWriteError(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want error // nil: returned unchanged
	}{
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), nil},
		{"closed writer", io.ErrClosedPipe, component.ErrClosed},
		{"too large", kafka.MessageTooLargeError{}, component.ErrInvalidArgument},
		{"invalid topic", kafka.InvalidTopic, component.ErrInvalidArgument},
		{"no leader", kafka.LeaderNotAvailable, component.ErrUnavailable},
		{"refused", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, component.ErrUnavailable},
		{"eof", io.EOF, component.ErrUnavailable},
		{"other kafka error", kafka.GroupAuthorizationFailed, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := kafkaclient.WriteError(tt.err)
			if !errors.Is(got, tt.err) && !errors.As(got, new(kafka.MessageTooLargeError)) {
				t.Errorf("WriteError(%v) = %v, which does not wrap the original", tt.err, got)
			}
			if tt.want == nil {
				if got != tt.err {
					t.Errorf("WriteError(%v) = %v, want it unchanged", tt.err, got)
				}
				return
			}
			if !errors.Is(got, tt.want) {
				t.Errorf("WriteError(%v) = %v, want one wrapping %v", tt.err, got, tt.want)
			}
		})
	}
	if kafkaclient.WriteError(nil) != nil {
		t.Error("WriteError(nil) != nil")
	}
}

func TestNextRetryInterval(t *testing.T) {
	d := 100 * time.Millisecond
	var got []time.Duration
	for range 8 {
		got = append(got, d)
		d = kafkaclient.NextRetryInterval(d)
	}
	want := []time.Duration{100e6, 200e6, 400e6, 800e6, 1600e6, 3200e6, 5e9, 5e9}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("backoff %v, want %v", got, want)
	}
}
