//go:build !linux

package rawsock

import "net"

// Conn returns c: raw reads and writes are made on Linux only.
func Conn(c net.Conn) net.Conn { return c }
