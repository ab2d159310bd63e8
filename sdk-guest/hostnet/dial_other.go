//go:build !wasip1

package hostnet

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"syscall"

	"github.com/wapr-dev/wapr/sdk-guest/internal/hosterr"
)

// Dial connects to addr with the standard library (native builds). Errors
// are classified as in Wasm: a refused connection or unknown host matches
// ErrRefused.
func Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	return c, classify(err)
}

// DialTLS connects with TLS from crypto/tls, verifying the server against
// the system roots (native builds).
func DialTLS(ctx context.Context, network, addr string) (net.Conn, error) {
	d := tls.Dialer{Config: &tls.Config{MinVersion: tls.VersionTLS12}}
	c, err := d.DialContext(ctx, network, addr)
	return c, classify(err)
}

func classify(err error) error {
	if err == nil {
		return nil
	}
	var dnsErr *net.DNSError
	if errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &dnsErr) {
		return &hosterr.Error{Op: "hostnet: dial", Code: hosterr.Refused, Err: err}
	}
	return err
}
