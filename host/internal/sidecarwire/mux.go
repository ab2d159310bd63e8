package sidecarwire

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/wapr-dev/wapr/host/internal/api"
)

// The mux wire: every call between two sidecars travels as a frame on one
// TCP connection that the calling sidecar keeps to the called one, many
// calls in flight at once, answered in any order.
//
// A connection starts with muxPreface, sent by the caller and echoed by the
// called sidecar. Then both ends send frames:
//
//	length   4 bytes, big endian: the bytes after this field
//	id       4 bytes, big endian: the call, chosen by the caller
//	message  length-4 bytes: one message of codec.go (kindRequest from the
//	         caller; kindAnswer or kindError back, with the request's id),
//	         or kindGoAway alone from the called sidecar, or kindCancel
//	         alone from the caller
//
// kindGoAway says the called sidecar is shutting down: it took every call
// up to and including the frame's id and answers those; later ones it
// drops, unseen by its app, and the caller may send them elsewhere.
// kindCancel says the caller no longer waits for the call with the frame's
// id (its deadline passed, its own caller went away): the called sidecar
// sends no answer and no longer counts the call as in flight, so its
// shutdown does not wait for it, and ends the call's context, so that an
// actor call still waiting for its actor's turn stops waiting (a closed
// connection ends its calls' contexts too). The app's call itself, once
// begun, runs on until the app answers or the app channel's timeout ends
// it, as on the HTTP wire.
//
// Writers put frames into a buffer of the connection; the first writer to
// find no write under way writes the buffer, and whatever the others added
// meanwhile, in as few system calls as it can. Under load many calls share
// a write, which is the wire's point: the HTTP/1.1 wire costs a write and a
// read on each end for every call.
const (
	muxPreface = "wapr-mux/1\n"
	// kindGoAway is the called sidecar's message that it is shutting down.
	kindGoAway byte = 4
	// kindCancel is the caller's message that it gave a call up.
	kindCancel byte = 5
	// frameHeader is the size of length and id.
	frameHeader = 8
	// writeTimeout bounds one write of a connection's buffer: a peer that
	// stops reading fails the connection rather than every writer behind it.
	// A write gets between half of it and all of it (frameWriter.send).
	writeTimeout = 30 * time.Second
	// prefaceTimeout bounds the exchange of prefaces.
	prefaceTimeout = 5 * time.Second
	// readBuffer is the size of a connection's read buffer.
	readBuffer = 64 << 10
	// keepSpare is the largest write buffer kept for the next batch; a
	// larger one, grown by a large body, goes back to the garbage collector.
	keepSpare = 1 << 20
)

// frameWriter writes the frames of one connection, batching concurrent
// writers' frames into few writes. It is safe for concurrent use.
type frameWriter struct {
	nc net.Conn

	mu      sync.Mutex
	buf     []byte // frames waiting to be written
	spare   []byte // the buffer last written, for reuse
	writing bool   // a writer is writing; it takes what is added meanwhile
	err     error  // the first write error; later sends fail with it
	closing bool   // close nc once buf is written

	deadline time.Time // nc's write deadline; the writer's alone
}

// send appends a frame with id and the message add appends, and returns once
// the frame is written or handed to the writer under way. It returns the
// connection's write error, if any (the frame is then lost).
func (w *frameWriter) send(id uint32, add func([]byte) []byte) error {
	w.mu.Lock()
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return err
	}
	start := len(w.buf)
	w.buf = binary.BigEndian.AppendUint32(w.buf, 0)
	w.buf = binary.BigEndian.AppendUint32(w.buf, id)
	w.buf = add(w.buf)
	binary.BigEndian.PutUint32(w.buf[start:], uint32(len(w.buf)-start-4))
	if w.writing {
		w.mu.Unlock()
		return nil
	}
	w.writing = true
	w.mu.Unlock()
	// Let the goroutines that are ready to run add their frames first:
	// under load they are the calls sharing this write.
	runtime.Gosched()
	w.mu.Lock()
	for len(w.buf) > 0 && w.err == nil {
		out := w.buf
		w.buf = w.spare[:0]
		w.spare = nil
		w.mu.Unlock()
		// The deadline moves only when less than half of writeTimeout is
		// left: setting it for every write was 1.5% of a sidecar's CPU.
		if now := time.Now(); w.deadline.Sub(now) < writeTimeout/2 {
			w.deadline = now.Add(writeTimeout)
			w.nc.SetWriteDeadline(w.deadline)
		}
		_, err := w.nc.Write(out)
		w.mu.Lock()
		if err != nil {
			w.err = fmt.Errorf("writing to the connection: %w", err)
		}
		if cap(out) <= keepSpare {
			w.spare = out[:0]
		}
	}
	w.writing = false
	err := w.err
	if w.closing {
		w.nc.Close()
	}
	w.mu.Unlock()
	return err
}

// closeWhenWritten closes the connection once the frames already sent are
// written (at once when none wait).
func (w *frameWriter) closeWhenWritten() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closing = true
	if !w.writing {
		w.nc.Close()
	}
}

// frameReader reads the frames of one connection; it is used by one
// goroutine.
type frameReader struct {
	br  *bufio.Reader
	hdr [frameHeader]byte
}

func newFrameReader(nc net.Conn) *frameReader {
	return &frameReader{br: bufio.NewReaderSize(nc, readBuffer)}
}

// next reads a frame's header: the call id and the message's length.
func (r *frameReader) next() (id uint32, size int, err error) {
	if _, err := io.ReadFull(r.br, r.hdr[:]); err != nil {
		return 0, 0, err
	}
	n := binary.BigEndian.Uint32(r.hdr[0:4])
	if n < 4+1 {
		return 0, 0, fmt.Errorf("%w: a frame of %d bytes", errFrame, n)
	}
	return binary.BigEndian.Uint32(r.hdr[4:8]), int(n - 4), nil
}

// message reads the size bytes of the frame's message into a pooled
// buffer (api.Buffer), which its holder releases once nothing refers to it:
// the called sidecar once the call is answered (the app call has copied
// the request's body by then, and the request's strings are copies), the
// calling one once the answer's body is sent on.
func (r *frameReader) message(size int) (*api.Buffer, error) {
	buf := api.GetBuffer(size)
	if _, err := io.ReadFull(r.br, buf.B); err != nil {
		buf.Release()
		return nil, err
	}
	return buf, nil
}

// skip discards the size bytes of the frame's message.
func (r *frameReader) skip(size int) error {
	_, err := r.br.Discard(size)
	return err
}

// exchangePreface sends muxPreface and reads the called sidecar's echo
// within prefaceTimeout. An HTTP/2 server's SETTINGS frame instead is
// errHTTP2Peer (a daprd: sniff.go).
func exchangePreface(nc net.Conn) error {
	nc.SetDeadline(time.Now().Add(prefaceTimeout))
	defer nc.SetDeadline(time.Time{})
	if _, err := io.WriteString(nc, muxPreface); err != nil {
		return fmt.Errorf("sending the preface: %w", err)
	}
	got := make([]byte, len(muxPreface))
	if _, err := io.ReadFull(nc, got); err != nil {
		return fmt.Errorf("reading the preface: %w", err)
	}
	if string(got) != muxPreface {
		if isHTTP2Settings(got) {
			return errHTTP2Peer
		}
		return fmt.Errorf("the peer does not speak %q", muxPreface[:len(muxPreface)-1])
	}
	return nil
}

// readFirst reads a new connection's first byte within prefaceTimeout.
func readFirst(nc net.Conn) (byte, error) {
	nc.SetReadDeadline(time.Now().Add(prefaceTimeout))
	defer nc.SetReadDeadline(time.Time{})
	var b [1]byte
	if _, err := io.ReadFull(nc, b[:]); err != nil {
		return 0, fmt.Errorf("reading the preface: %w", err)
	}
	return b[0], nil
}

// answerPreface reads the rest of the caller's muxPreface, whose first
// byte was first, and echoes it within prefaceTimeout; the called sidecar
// answers only a preface it read, so that it sends nothing to a peer that
// does not speak the wire.
func answerPreface(nc net.Conn, first byte) error {
	nc.SetDeadline(time.Now().Add(prefaceTimeout))
	defer nc.SetDeadline(time.Time{})
	got := make([]byte, len(muxPreface))
	got[0] = first
	if _, err := io.ReadFull(nc, got[1:]); err != nil {
		return fmt.Errorf("reading the preface: %w", err)
	}
	if string(got) != muxPreface {
		return fmt.Errorf("the peer does not speak %q", muxPreface[:len(muxPreface)-1])
	}
	if _, err := io.WriteString(nc, muxPreface); err != nil {
		return fmt.Errorf("sending the preface: %w", err)
	}
	return nil
}
