package h2grpc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

// emptyReply is the reply of /test.Echo/Empty: shared, so the handler
// allocates only its request.
var emptyReply = &emptypb.Empty{}

func registerEcho(s *Server) {
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: "test.Echo",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Empty",
			Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				if err := dec(new(emptypb.Empty)); err != nil {
					return nil, err
				}
				return emptyReply, nil
			},
		}},
	}, nil)
}

// frameClient is a client of one unary method that allocates next to
// nothing itself, so that what a call allocates is the server's. It
// encodes its request's headers as grpc-go does, into hpack's dynamic
// table (after the first call each is one byte), and reads replies with a
// framer that reuses its data frames.
type frameClient struct {
	t    testing.TB
	nc   net.Conn
	bw   *bufio.Writer
	fr   *http2.Framer
	henc *hpack.Encoder
	hbuf bytes.Buffer
	path string
	id   uint32
}

func dialFrameClient(t testing.TB, addr, path string) *frameClient {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &frameClient{t: t, nc: nc, bw: bufio.NewWriter(nc), path: path, id: 1}
	c.henc = hpack.NewEncoder(&c.hbuf)
	c.fr = http2.NewFramer(c.bw, bufio.NewReader(nc))
	c.fr.SetReuseFrames()
	c.bw.WriteString(http2.ClientPreface)
	c.fr.WriteSettings()
	c.fr.WriteWindowUpdate(0, 1<<30)
	c.bw.Flush()
	return c
}

// call makes one call with an empty message and reads frames until the
// reply's trailers.
func (c *frameClient) call() {
	id := c.id
	c.id += 2
	c.hbuf.Reset()
	for _, f := range [...]hpack.HeaderField{{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "http"}, {Name: ":path", Value: c.path}, {Name: ":authority", Value: "x"}, {Name: "content-type", Value: "application/grpc"}, {Name: "te", Value: "trailers"}, {Name: "user-agent", Value: "alloc-test"}} {
		c.henc.WriteField(f)
	}
	c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.hbuf.Bytes(), EndHeaders: true})
	var msg [5]byte
	c.fr.WriteData(id, true, msg[:])
	if err := c.bw.Flush(); err != nil {
		c.t.Fatal(err)
	}
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			c.t.Fatal(err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				c.fr.WriteSettingsAck()
			}
		case *http2.RSTStreamFrame:
			c.t.Fatalf("stream %d reset: %v", f.StreamID, f.ErrCode)
		case *http2.DataFrame:
			if f.StreamID == id && len(f.Data()) >= 5 && binary.BigEndian.Uint32(f.Data()[1:5]) != 0 {
				c.t.Fatalf("reply of %d bytes, want an empty message", binary.BigEndian.Uint32(f.Data()[1:5]))
			}
		case *http2.HeadersFrame:
			if f.StreamID == id && f.StreamEnded() {
				return
			}
		}
	}
}

// TestUnaryAllocations holds what a unary call costs the server in
// allocations: its stream, context and metadata, the request message the
// handler decodes, and the handing of the call to a worker. The test's
// client adds the two header frames its framer allocates. The budget is
// the count measured (identical over repeated runs) plus one; raise it
// only with a reason.
func TestUnaryAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	_, cc := startServer(t, Options{}, registerEcho)
	c := dialFrameClient(t, cc.Target(), "/test.Echo/Empty")
	c.call() // settings, windows, the worker pool
	const budget = 15
	got := testing.AllocsPerRun(1000, c.call)
	t.Logf("%.1f allocations per unary call", got)
	if got > budget {
		t.Errorf("%.1f allocations per unary call, budget %d", got, budget)
	}
}
