package grpcapi

import (
	"bytes"
	"strings"
	"testing"

	commonv1pb "github.com/dapr/dapr/pkg/proto/common/v1"
	runtimev1pb "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
)

// TestCodec checks that the codec writes what proto.Marshal writes and
// reads it back, for replies on both sides of the pooled buffers' size and
// the empty reply, and that a freed reply buffer is reused without its old
// bytes showing through.
func TestCodec(t *testing.T) {
	var c codec
	big := bytes.Repeat([]byte("v"), 3*replyBufSize)
	cases := []struct {
		name string
		msg  proto.Message
	}{
		{"empty", &emptypb.Empty{}},
		{"small", &runtimev1pb.GetStateResponse{Data: benchValue, Etag: "1"}},
		{"just over the pooled size", &runtimev1pb.GetStateResponse{Data: big[:replyBufSize]}},
		{"large", &runtimev1pb.GetStateResponse{Data: big, Metadata: map[string]string{"a": "b"}}},
		{"request", saveRequest()},
		{"large request", saveRequestItems(100)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want, err := proto.MarshalOptions{Deterministic: true}.Marshal(tc.msg)
			if err != nil {
				t.Fatal(err)
			}
			for range 3 { // the second and third reuse the first's buffer
				data, err := c.Marshal(tc.msg)
				if err != nil {
					t.Fatal(err)
				}
				if got := data.Materialize(); !bytes.Equal(got, want) {
					t.Fatalf("Marshal: %x, want %x", got, want)
				}
				out := tc.msg.ProtoReflect().New().Interface()
				if err := c.Unmarshal(data, out); err != nil {
					t.Fatal(err)
				}
				data.Free()
				if !proto.Equal(out, tc.msg) {
					t.Fatalf("Unmarshal: %v, want %v", out, tc.msg)
				}
			}
		})
	}
	// A request split over several buffers (several DATA frames).
	want := saveRequest()
	b, _ := proto.Marshal(want)
	split := mem.BufferSlice{mem.SliceBuffer(b[:3]), mem.SliceBuffer(b[3:])}
	got := &runtimev1pb.SaveStateRequest{}
	if err := c.Unmarshal(split, got); err != nil || !proto.Equal(got, want) {
		t.Fatalf("Unmarshal of two buffers: %v, %v; want %v", got, err, want)
	}
	if _, err := c.Marshal("not a message"); err == nil || !strings.Contains(err.Error(), "string") {
		t.Fatalf("Marshal of a string: %v", err)
	}
	if err := c.Unmarshal(nil, new(int)); err == nil {
		t.Fatal("Unmarshal into an int: no error")
	}
	if c.Name() != grpcproto.Name {
		t.Fatalf("Name %q, want %q", c.Name(), grpcproto.Name)
	}
}

// BenchmarkCodecMarshal compares the codec with grpc's on a GetState reply
// (the small reply of every get), freeing each reply as grpc does once it
// is written.
func BenchmarkCodecMarshal(b *testing.B) {
	msg := &runtimev1pb.GetStateResponse{Data: benchValue, Etag: "1"}
	codecs := []struct {
		name string
		c    encoding.CodecV2
	}{
		{"wapr", codec{}},
		{"grpc", encoding.GetCodecV2(grpcproto.Name)},
	}
	for _, c := range codecs {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				data, err := c.c.Marshal(msg)
				if err != nil {
					b.Fatal(err)
				}
				data.Free()
			}
		})
	}
}

// saveRequestItems is a SaveState request of n items, for a request larger
// than one small buffer.
func saveRequestItems(n int) *runtimev1pb.SaveStateRequest {
	r := &runtimev1pb.SaveStateRequest{StoreName: "statestore"}
	for i := range n {
		r.States = append(r.States, &commonv1pb.StateItem{Key: strings.Repeat("k", i+1), Value: benchValue})
	}
	return r
}
