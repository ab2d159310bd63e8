package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestSIGTERMDrainsKeepAliveClients: a wapr process gets SIGTERM while 16
// clients loop requests on keep-alive connections. Every request whose bytes
// were written gets a response; the process exits cleanly. Connections
// refused once the listener is closed never reached wapr and are fine.
func TestSIGTERMDrainsKeepAliveClients(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs wapr processes")
	}
	cfg := writeConfig(t, "    component: static\n    configuration:\n      apps: {}\n")
	var answered, closes, lost int64
	for round := range 5 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			p := startWapr(t, "drain", nameApp(t, "drain"), freePort(t), cfg)
			exited := make(chan error, 1)
			r := sigtermLoad(t, strings.TrimPrefix(p.base, "http://"), 16, func() {
				go func() { exited <- p.cmd.Wait() }()
				if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
					t.Fatal(err)
				}
				select {
				case err := <-exited:
					if err != nil {
						t.Errorf("wapr exited with %v:\n%s", err, p.out)
					}
				case <-time.After(20 * time.Second):
					t.Errorf("wapr still runs 20 s after SIGTERM:\n%s", p.out)
				}
			})
			answered += r.answered.Load()
			closes += r.closes.Load()
			lost += r.lost.Load()
		})
	}
	t.Logf("%d requests answered, %d with Connection: close, %d lost", answered, closes, lost)
	if lost > 0 {
		t.Errorf("%d requests reached wapr and got no response", lost)
	}
	if closes == 0 {
		t.Error("no response carried Connection: close: clients were not told the connection ends")
	}
}

// loadCounts counts what the clients of sigtermLoad saw.
type loadCounts struct {
	answered atomic.Int64 // responses read in full
	closes   atomic.Int64 // of those, with Connection: close
	lost     atomic.Int64 // requests written whose response never came
}

// sigtermLoad runs clients on keep-alive connections to addr, calls stop
// once each has been answered a few times, and returns when every client
// has given up on a refused connection. The clients speak HTTP/1.1 over raw
// connections: net/http's transport retries a request that died on a reused
// connection, which would hide the loss. A request counts as lost when it
// was fully written and its response did not arrive in full; a failed write
// means the connection was already reset, so that request never reached
// wapr. (host/shutdown_drain_test.go runs the same load in process.)
func sigtermLoad(t *testing.T, addr string, clients int, stop func()) *loadCounts {
	t.Helper()
	const request = "GET /v1.0/metadata HTTP/1.1\r\nHost: wapr\r\n\r\n"
	var (
		c        loadCounts
		stopping = make(chan struct{})
		warm     sync.WaitGroup
		done     sync.WaitGroup
	)
	warm.Add(clients)
	for range clients {
		done.Go(func() {
			var (
				conn   net.Conn
				br     *bufio.Reader
				served int
			)
			defer func() {
				if conn != nil {
					conn.Close()
				}
				if served < 20 {
					warm.Done()
				}
			}()
			for {
				if conn == nil {
					nc, err := net.Dial("tcp", addr)
					if err != nil {
						select {
						case <-stopping:
						default:
							t.Errorf("dial before SIGTERM: %v", err)
						}
						return
					}
					conn, br = nc, bufio.NewReader(nc)
				}
				conn.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.WriteString(conn, request); err != nil {
					conn.Close()
					conn = nil
					continue
				}
				res, err := http.ReadResponse(br, nil)
				if err == nil {
					_, err = io.Copy(io.Discard, res.Body)
					res.Body.Close()
				}
				if err != nil {
					if n := c.lost.Add(1); n <= 5 {
						t.Logf("request written, no response: %v", err)
					}
					conn.Close()
					conn = nil
					continue
				}
				c.answered.Add(1)
				if res.StatusCode != http.StatusOK {
					t.Errorf("status %d", res.StatusCode)
				}
				if served++; served == 20 {
					warm.Done()
				}
				if res.Close {
					c.closes.Add(1)
					conn.Close()
					conn = nil
				}
			}
		})
	}
	warm.Wait()
	close(stopping)
	stop()
	done.Wait()
	return &c
}
