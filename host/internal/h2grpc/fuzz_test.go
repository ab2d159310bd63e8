package h2grpc

import (
	"bytes"
	"io"
	"net"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/interop"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
)

func hpackDecoder() *hpack.Decoder { return hpack.NewDecoder(4096, nil) }

// encodeFields hpack-encodes name, value pairs.
func encodeFields(t testing.TB, kv ...string) []byte {
	var b bytes.Buffer
	e := hpack.NewEncoder(&b)
	for i := 0; i+1 < len(kv); i += 2 {
		if err := e.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]}); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

// frames returns well-formed client frames to seed the fuzzer: a unary
// call with its message, a PING, a WINDOW_UPDATE and a reset.
func frames(t testing.TB) []byte {
	var b bytes.Buffer
	fr := http2.NewFramer(&b, nil)
	fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 16})
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: true, BlockFragment: encodeFields(t,
		":method", "POST", ":scheme", "http", ":path", "/grpc.testing.TestService/UnaryCall", ":authority", "x",
		"content-type", "application/grpc", "te", "trailers", "grpc-timeout", "1S", "x-md-bin", "AAEC")})
	fr.WriteData(1, true, []byte{0, 0, 0, 0, 2, 0x10, 0x05})
	fr.WritePing(false, [8]byte{1})
	fr.WriteWindowUpdate(0, 1000)
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, EndHeaders: true, BlockFragment: encodeFields(t,
		":method", "POST", ":scheme", "http", ":path", "/grpc.testing.TestService/FullDuplexCall", ":authority", "x",
		"content-type", "application/grpc")})
	fr.WriteData(3, false, []byte{0, 0, 0, 0, 0})
	fr.WriteRSTStream(3, http2.ErrCodeCancel)
	return b.Bytes()
}

// FuzzConn feeds arbitrary bytes after the client preface to a
// connection: whatever they are, the server must neither panic nor hang,
// and must end the connection once the client closes it.
func FuzzConn(f *testing.F) {
	f.Add(frames(f))
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 4, 0, 0, 0, 0, 0})
	s := New(Options{MaxRecvMsgSize: 1 << 16})
	testgrpc.RegisterTestServiceServer(s, interop.NewTestServer())
	f.Cleanup(s.Close)
	f.Fuzz(func(t *testing.T, in []byte) {
		client, server := net.Pipe()
		c := newConn(s, server)
		served := make(chan struct{})
		go func() {
			c.serve()
			close(served)
		}()
		go io.Copy(io.Discard, client) // the server's replies
		client.Write([]byte(http2.ClientPreface))
		client.Write(in)
		client.Close()
		<-served
	})
}
