//go:build wasip1

package hostnet

import (
	"context"
	"net"
	"runtime"
	"time"
	"unsafe"

	"github.com/wapr-dev/wapr/abi"
	"github.com/wapr-dev/wapr/sdk-guest/internal/hosterr"
)

//go:wasmimport wapr_sock_v1 dial
func hostDial(addr unsafe.Pointer, addrLen uint32, flags int32, timeoutMillis uint32) int32

//go:wasmimport wapr_sock_v1 read
func hostRead(h int32, buf unsafe.Pointer, limit uint32) int32

//go:wasmimport wapr_sock_v1 write
func hostWrite(h int32, ptr unsafe.Pointer, n uint32) int32

//go:wasmimport wapr_sock_v1 wait
func hostWait(h int32, timeoutMillis uint32) int32

//go:wasmimport wapr_sock_v1 close
func hostClose(h int32) int32

var host = sockFuncs{
	read: func(h int32, p []byte) int32 {
		return hostRead(h, unsafe.Pointer(unsafe.SliceData(p)), uint32(len(p)))
	},
	write: func(h int32, p []byte) int32 {
		return hostWrite(h, unsafe.Pointer(unsafe.SliceData(p)), uint32(len(p)))
	},
	wait:   hostWait,
	close:  hostClose,
	yield:  runtime.Gosched,
	others: func() bool { return runtime.NumGoroutine() > 1 },
	since:  func() time.Duration { return time.Since(epoch) },
}

// Dial connects to addr ("host:port") through the host. network must be
// tcp, tcp4 or tcp6 (the host picks the address family). ctx's deadline, if
// any, bounds the dial; otherwise the call's deadline does.
func Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return dial(ctx, network, addr, 0)
}

// DialTLS is Dial with TLS run by the host, which verifies the server
// against its roots using the host name in addr; the returned connection
// carries plaintext.
func DialTLS(ctx context.Context, network, addr string) (net.Conn, error) {
	return dial(ctx, network, addr, abi.SockTLS)
}

func dial(ctx context.Context, network, addr string, flags int32) (net.Conn, error) {
	opErr := func(err error) error {
		return &net.OpError{Op: "dial", Net: network, Addr: remoteAddr(addr), Err: err}
	}
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, opErr(net.UnknownNetworkError(network))
	}
	if err := ctx.Err(); err != nil {
		return nil, opErr(err)
	}
	var timeout uint32
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		if left <= 0 {
			return nil, opErr(context.DeadlineExceeded)
		}
		timeout = uint32(min((left+time.Millisecond-1)/time.Millisecond, 1<<31))
	}
	if addr == "" {
		return nil, opErr(hosterr.Invalid)
	}
	h := hostDial(unsafe.Pointer(unsafe.StringData(addr)), uint32(len(addr)), flags, timeout)
	if h <= 0 {
		if h == 0 {
			h = abi.ErrIO
		}
		return nil, opErr(hosterr.Code(h))
	}
	return newConn(&host, h, addr), nil
}
