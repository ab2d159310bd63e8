package host_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestShutdownDrainsKeepAliveClients: 16 clients loop requests on keep-alive
// connections while the host shuts down. Every request whose bytes were
// written must get a response; a connection refused (the listener is
// closed) never reached wapr and is fine. Each round is a new sidecar, since
// the race this guards against is timing-dependent.
func TestShutdownDrainsKeepAliveClients(t *testing.T) {
	rounds := 20
	if testing.Short() {
		rounds = 3
	}
	var total drainLoad
	for round := range rounds {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			s := startSidecar(t, hostConfig{})
			addr := strings.TrimPrefix(s.base, "http://")
			r := runDrainLoad(t, addr, 16, func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := s.h.Shutdown(ctx); err != nil {
					t.Errorf("shutdown: %v", err)
				}
			})
			total.add(r)
		})
	}
	t.Logf("%d rounds: %d requests answered, %d with Connection: close, %d lost", rounds, total.answered.Load(), total.closes.Load(), total.lost.Load())
	if total.lost.Load() > 0 {
		t.Errorf("%d requests reached wapr and got no response", total.lost.Load())
	}
	if total.closes.Load() == 0 {
		t.Error("no response carried Connection: close: clients were not told the connection ends")
	}
}

// drainLoad counts what the clients of runDrainLoad saw.
type drainLoad struct {
	answered atomic.Int64 // responses read in full
	closes   atomic.Int64 // of those, with Connection: close
	lost     atomic.Int64 // requests written whose response never came
}

func (d *drainLoad) add(o *drainLoad) {
	d.answered.Add(o.answered.Load())
	d.closes.Add(o.closes.Load())
	d.lost.Add(o.lost.Load())
}

// drainRequest is the request every client loops on.
const drainRequest = "GET /v1.0/metadata HTTP/1.1\r\nHost: wapr\r\n\r\n"

// runDrainLoad runs clients on keep-alive connections to addr, calls stop
// once each has been answered a few times, and returns when every client
// has given up on a refused connection. The clients speak HTTP/1.1 over
// raw connections: net/http's transport would retry a request that died on
// a reused connection and hide the loss.
//
// What counts as lost: a request fully written whose response did not
// arrive in full (EOF, reset, timeout). A write that fails means the
// connection was already reset: that request never reached wapr, the
// client reconnects.
func runDrainLoad(t *testing.T, addr string, clients int, stop func()) *drainLoad {
	t.Helper()
	var (
		d        drainLoad
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
					c, err := net.Dial("tcp", addr)
					if err != nil {
						select {
						case <-stopping:
						default:
							t.Errorf("dial before shutdown: %v", err)
						}
						return
					}
					conn, br = c, bufio.NewReader(c)
				}
				conn.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.WriteString(conn, drainRequest); err != nil {
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
					if n := d.lost.Add(1); n <= 5 {
						t.Logf("request written, no response: %v (%s)", err, lossKind(err))
					}
					conn.Close()
					conn = nil
					continue
				}
				d.answered.Add(1)
				if res.StatusCode != http.StatusOK {
					t.Errorf("status %d", res.StatusCode)
				}
				if served++; served == 20 {
					warm.Done()
				}
				if res.Close {
					d.closes.Add(1)
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
	return &d
}

func lossKind(err error) string {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "closed"
	case errors.Is(err, net.ErrClosed):
		return "closed locally"
	case strings.Contains(err.Error(), "reset"):
		return "reset"
	case errors.Is(err, context.DeadlineExceeded), strings.Contains(err.Error(), "timeout"):
		return "timeout"
	}
	return "other"
}
