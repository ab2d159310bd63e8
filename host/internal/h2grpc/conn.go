package h2grpc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// What the server advertises.
const (
	// streamWindow is the receive window of each stream
	// (SETTINGS_INITIAL_WINDOW_SIZE): a request of up to 1 MiB arrives
	// without waiting for a window update.
	streamWindow = 1 << 20
	// connWindow is the receive window of the connection, for all its
	// streams together.
	connWindow = 16 << 20
	// maxStreams bounds the calls in flight on one connection
	// (SETTINGS_MAX_CONCURRENT_STREAMS); more are refused, and clients
	// queue them.
	maxStreams = 4096
	// maxHeaderBytes bounds one header block, as decoded: a request's
	// metadata.
	maxHeaderBytes = 1 << 20
	// defaultMaxFrame is HTTP/2's initial SETTINGS_MAX_FRAME_SIZE, the
	// largest frame the peer takes until it says otherwise.
	defaultMaxFrame = 16 << 10
	// defaultPeerWindow is HTTP/2's initial window of a connection and
	// of a stream before the peer's SETTINGS.
	defaultPeerWindow = 65535
)

// conn is one client connection. The reader goroutine (serve) reads every
// frame and owns the hpack decoder; writers hold wmu. mu guards the stream
// table, the send windows and the connection's state.
type conn struct {
	srv *Server
	nc  net.Conn
	br  *bufio.Reader // the framer's; the reader goroutine's
	fr  *http2.Framer // ReadFrame on the reader goroutine; writes under wmu

	// The write side. Writers append frames to pending under wmu and
	// wake the flusher goroutine, which swaps pending for an empty buffer
	// and writes it to the socket outside wmu: no writer waits for a
	// system call, and the replies of calls that end together leave in
	// one write.
	wmu     sync.Mutex
	wcond   sync.Cond // on wmu: pending was taken by the flusher
	pending []byte
	kicked  bool // the flusher was woken for what is pending
	kick    chan struct{}
	sockMu  sync.Mutex // held while writing to nc: one writer at a time, in order
	henc    *hpack.Encoder
	hbuf    bytes.Buffer // henc's output
	werr    error        // the first write error; nothing is written after it

	mu         sync.Mutex
	cond       sync.Cond // on mu: a send window grew or a stream or the connection ended
	streams    map[uint32]*stream
	sendWindow int64  // the connection's send window
	peerWindow int64  // the peer's SETTINGS_INITIAL_WINDOW_SIZE
	maxFrame   int    // the peer's SETTINGS_MAX_FRAME_SIZE
	lastID     uint32 // the highest stream the client opened
	goingAway  bool
	closed     bool

	// buffered is the bytes of request messages the connection's calls
	// hold, received and not yet taken (Server.maxBuffered bounds it).
	buffered atomic.Int64

	// The reader goroutine's own.
	hdec        *hpack.Decoder
	fields      []hpack.HeaderField // the header block being decoded
	fieldBytes  int
	fieldsErr   error
	pendingEnd  bool // END_STREAM of a header block that goes on in CONTINUATION frames
	recvUnacked int  // bytes received on the connection, not yet given back
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{
		srv:        s,
		nc:         nc,
		kick:       make(chan struct{}, 1),
		streams:    map[uint32]*stream{},
		sendWindow: defaultPeerWindow,
		peerWindow: defaultPeerWindow,
		maxFrame:   defaultMaxFrame,
	}
	c.cond.L = &c.mu
	c.wcond.L = &c.wmu
	c.br = bufio.NewReaderSize(nc, 32<<10)
	c.fr = http2.NewFramer(pendingWriter{c}, c.br)
	c.fr.SetReuseFrames()
	c.henc = hpack.NewEncoder(&c.hbuf)
	c.hdec = hpack.NewDecoder(4096, c.emit)
	c.hdec.SetMaxStringLength(maxHeaderBytes)
	return c
}

// emit collects a decoded header field of the block being read.
func (c *conn) emit(f hpack.HeaderField) {
	c.fieldBytes += int(f.Size())
	if c.fieldBytes > maxHeaderBytes {
		c.fieldsErr = errors.New("header block too large")
		return
	}
	c.fields = append(c.fields, f)
}

// serve reads the connection until it ends.
func (c *conn) serve() {
	go c.flusher()
	err := c.readLoop()
	c.close(err)
}

func (c *conn) readLoop() error {
	// A client that connects and says nothing is not kept.
	c.nc.SetReadDeadline(time.Now().Add(c.srv.prefaceTimeout))
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(c.br, preface); err != nil {
		return err
	}
	c.nc.SetReadDeadline(time.Time{})
	if string(preface) != http2.ClientPreface {
		return errors.New("not an HTTP/2 client preface")
	}
	if err := c.writeControl(func() error {
		if err := c.fr.WriteSettings(
			http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: maxStreams},
			http2.Setting{ID: http2.SettingInitialWindowSize, Val: streamWindow},
			http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: maxHeaderBytes},
		); err != nil {
			return err
		}
		return c.fr.WriteWindowUpdate(0, connWindow-defaultPeerWindow)
	}); err != nil {
		return err
	}
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				c.resetStream(se.StreamID, se.Code)
				continue
			}
			var ce http2.ConnectionError
			if errors.As(err, &ce) {
				c.connError(http2.ErrCode(ce), err)
			}
			return err
		}
		if err := c.handle(f); err != nil {
			return err
		}
	}
}

// handle acts on one frame read; an error ends the connection.
func (c *conn) handle(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.DataFrame:
		return c.onData(f)
	case *http2.HeadersFrame:
		c.fields, c.fieldBytes, c.fieldsErr = c.fields[:0], 0, nil
		if _, err := c.hdec.Write(f.HeaderBlockFragment()); err != nil {
			return c.connError(http2.ErrCodeCompression, err)
		}
		if f.HeadersEnded() {
			return c.headersEnded(f.StreamID, f.StreamEnded())
		}
		// The END_STREAM flag of a block that goes on in CONTINUATION
		// frames is remembered by the framer's frame order check only;
		// keep it here.
		c.pendingEnd = f.StreamEnded()
	case *http2.ContinuationFrame:
		if _, err := c.hdec.Write(f.HeaderBlockFragment()); err != nil {
			return c.connError(http2.ErrCodeCompression, err)
		}
		if f.HeadersEnded() {
			return c.headersEnded(f.StreamID, c.pendingEnd)
		}
	case *http2.SettingsFrame:
		return c.onSettings(f)
	case *http2.PingFrame:
		if !f.IsAck() {
			data := f.Data
			return c.writeControl(func() error { return c.fr.WritePing(true, data) })
		}
	case *http2.WindowUpdateFrame:
		return c.onWindowUpdate(f)
	case *http2.RSTStreamFrame:
		c.mu.Lock()
		s := c.streams[f.StreamID]
		c.mu.Unlock()
		if s != nil {
			s.abort(fmt.Errorf("stream reset by the client (%v)", f.ErrCode))
		}
	case *http2.GoAwayFrame:
		// The client closes the connection when it is done with it.
	}
	return nil
}

// headersEnded acts on a whole header block: a new call, or the end of
// one whose client sent trailers.
func (c *conn) headersEnded(id uint32, endStream bool) error {
	if err := c.hdec.Close(); err != nil {
		return c.connError(http2.ErrCodeCompression, err)
	}
	if c.fieldsErr != nil {
		return c.connError(http2.ErrCodeProtocol, c.fieldsErr)
	}
	c.mu.Lock()
	s := c.streams[id]
	c.mu.Unlock()
	if s != nil { // trailers: they must end the stream
		if !endStream {
			return c.connError(http2.ErrCodeProtocol, errors.New("headers in the middle of a stream"))
		}
		s.endRecv()
		return nil
	}
	if id%2 == 0 || id <= c.lastID {
		return c.connError(http2.ErrCodeProtocol, fmt.Errorf("stream %d cannot be opened", id))
	}
	c.mu.Lock()
	c.lastID = id
	c.mu.Unlock()
	return c.open(id, c.fields, endStream)
}

// onData hands a DATA frame to its stream and gives the connection's
// window back once a quarter of it was used.
func (c *conn) onData(f *http2.DataFrame) error {
	c.recvUnacked += int(f.Length)
	if c.recvUnacked >= connWindow/4 {
		n := c.recvUnacked
		c.recvUnacked = 0
		if err := c.writeControl(func() error { return c.fr.WriteWindowUpdate(0, uint32(n)) }); err != nil {
			return err
		}
	}
	c.mu.Lock()
	s := c.streams[f.StreamID]
	c.mu.Unlock()
	if s == nil {
		if f.StreamID > c.lastID {
			return c.connError(http2.ErrCodeProtocol, fmt.Errorf("data on idle stream %d", f.StreamID))
		}
		// A stream that has ended already: its late data is dropped.
		return nil
	}
	s.onData(f.Data(), f.StreamEnded())
	return nil
}

func (c *conn) onSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	var tableSize uint32
	var setTable bool
	err := f.ForeachSetting(func(st http2.Setting) error {
		switch st.ID {
		case http2.SettingInitialWindowSize:
			c.mu.Lock()
			delta := int64(st.Val) - c.peerWindow
			c.peerWindow = int64(st.Val)
			for _, s := range c.streams {
				s.sendWindow += delta
			}
			c.cond.Broadcast()
			c.mu.Unlock()
		case http2.SettingMaxFrameSize:
			c.mu.Lock()
			c.maxFrame = int(st.Val)
			c.mu.Unlock()
		case http2.SettingHeaderTableSize:
			tableSize, setTable = st.Val, true
		}
		return nil
	})
	if err != nil {
		return c.connError(http2.ErrCodeProtocol, err)
	}
	return c.writeControl(func() error {
		if setTable {
			c.henc.SetMaxDynamicTableSizeLimit(tableSize)
		}
		return c.fr.WriteSettingsAck()
	})
}

func (c *conn) onWindowUpdate(f *http2.WindowUpdateFrame) error {
	c.mu.Lock()
	overflow := false
	if f.StreamID == 0 {
		c.sendWindow += int64(f.Increment)
		overflow = c.sendWindow > 1<<31-1
	} else if s := c.streams[f.StreamID]; s != nil {
		s.sendWindow += int64(f.Increment)
	}
	c.cond.Broadcast()
	c.mu.Unlock()
	if overflow {
		return c.connError(http2.ErrCodeFlowControl, errors.New("connection window overflow"))
	}
	return nil
}

// takeWindow waits until s may send, then takes up to n bytes of the
// stream's and the connection's send windows, at most a frame's worth.
func (c *conn) takeWindow(s *stream, n int) (int, error) {
	var stop func() bool
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if c.closed || s.ended {
			return 0, errStreamEnded
		}
		if err := s.ctx.Err(); err != nil {
			return 0, err
		}
		if w := min(c.sendWindow, s.sendWindow); w > 0 {
			k := min(int64(n), w, int64(c.maxFrame))
			c.sendWindow -= k
			s.sendWindow -= k
			return int(k), nil
		}
		if stop == nil {
			// A call whose deadline passes while it waits for the
			// client's window stops waiting.
			stop = context.AfterFunc(s.ctx, func() {
				c.mu.Lock()
				c.cond.Broadcast()
				c.mu.Unlock()
			})
		}
		c.cond.Wait()
	}
}

// fits reports whether n bytes of s may be sent at once, and takes them
// from the windows if so: the fast path of a small reply.
func (c *conn) fits(s *stream, n int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.ended || c.closed || n > c.maxFrame || int64(n) > c.sendWindow || int64(n) > s.sendWindow {
		return false
	}
	c.sendWindow -= int64(n)
	s.sendWindow -= int64(n)
	return true
}

var (
	errStreamEnded = errors.New("h2grpc: stream ended")
	errConnClosed  = errors.New("h2grpc: connection closed")
)

// maxPending bounds the bytes waiting for the flusher: a writer that finds
// more waits for the socket. Replies are bounded by the client's windows
// anyway; this bounds the rest (headers of many small calls).
const maxPending = 1 << 20

// pendingWriter is the framer's writer: it appends to pending, under wmu.
type pendingWriter struct{ c *conn }

func (w pendingWriter) Write(p []byte) (int, error) {
	w.c.pending = append(w.c.pending, p...)
	return len(p), nil
}

// lockWrite takes the write lock; unlockWrite gives it back and wakes the
// flusher. Between them, frames go into pending.
func (c *conn) lockWrite() error {
	c.wmu.Lock()
	for c.werr == nil && len(c.pending) >= maxPending {
		c.wcond.Wait()
	}
	return c.werr
}

func (c *conn) unlockWrite(err error) error {
	if err != nil && c.werr == nil {
		c.werr = err
	}
	if c.werr == nil && !c.kicked && len(c.pending) > 0 {
		// Under wmu, as close closes kick under it.
		c.kicked = true
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
	werr := c.werr
	c.wmu.Unlock()
	if err != nil {
		c.close(err)
	}
	return werr
}

// flusher writes what is pending whenever it is woken, until the
// connection closes.
func (c *conn) flusher() {
	var out []byte
	for range c.kick {
		// Let the goroutines ready to run add their frames first:
		// under load they are replies that can share this write.
		runtime.Gosched()
		var err error
		if out, err = c.flush(out, c.srv.writeTimeout); err != nil {
			c.close(err)
			return
		}
	}
}

// flush writes what is pending, swapping in out (emptied) as the next
// pending buffer, and returns the buffer it wrote for the next swap. A
// client that does not take it within timeout loses its connection,
// rather than holding the calls that wait to write.
func (c *conn) flush(out []byte, timeout time.Duration) ([]byte, error) {
	c.sockMu.Lock()
	defer c.sockMu.Unlock()
	c.wmu.Lock()
	out, c.pending = c.pending, out[:0]
	c.kicked = false
	werr := c.werr
	c.wcond.Broadcast()
	c.wmu.Unlock()
	if werr != nil || len(out) == 0 {
		return out, werr
	}
	c.nc.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.nc.Write(out); err != nil {
		c.wmu.Lock()
		if c.werr == nil {
			c.werr = err
		}
		c.wcond.Broadcast()
		c.wmu.Unlock()
		return out, err
	}
	if cap(out) > 4*maxPending {
		out = nil // a burst's buffer is let go
	}
	return out, nil
}

// writeControl writes frames fn writes, under the write lock.
func (c *conn) writeControl(fn func() error) error {
	err := c.lockWrite()
	if err == nil {
		err = fn()
	}
	return c.unlockWrite(err)
}

// writeHeaders encodes fields as a header block of stream id, in one
// HEADERS frame and as many CONTINUATION frames as the peer's frame size
// needs. It is called with the write lock held.
func (c *conn) writeHeaders(id uint32, fields []hpack.HeaderField, endStream bool) error {
	c.hbuf.Reset()
	for _, f := range fields {
		if err := c.henc.WriteField(f); err != nil {
			return err
		}
	}
	block := c.hbuf.Bytes()
	c.mu.Lock()
	max := c.maxFrame
	c.mu.Unlock()
	first := block[:min(len(block), max)]
	block = block[len(first):]
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first, EndStream: endStream, EndHeaders: len(block) == 0}); err != nil {
		return err
	}
	for len(block) > 0 {
		part := block[:min(len(block), max)]
		block = block[len(part):]
		if err := c.fr.WriteContinuation(id, len(block) == 0, part); err != nil {
			return err
		}
	}
	return nil
}

// resetStream ends stream id with an RST_STREAM of code.
func (c *conn) resetStream(id uint32, code http2.ErrCode) {
	c.mu.Lock()
	s := c.streams[id]
	c.mu.Unlock()
	if s != nil {
		s.abort(fmt.Errorf("stream reset (%v)", code))
	}
	c.writeControl(func() error { return c.fr.WriteRSTStream(id, code) })
}

// connError sends a GOAWAY with code and returns err, which ends the
// connection.
func (c *conn) connError(code http2.ErrCode, err error) error {
	c.mu.Lock()
	last := c.lastID
	c.mu.Unlock()
	c.writeControl(func() error { return c.fr.WriteGoAway(last, code, []byte(err.Error())) })
	return err
}

// goAway tells the client that no new call will be taken; the connection
// closes once its calls have ended.
func (c *conn) goAway() {
	c.mu.Lock()
	if c.closed || c.goingAway {
		c.mu.Unlock()
		return
	}
	c.goingAway = true
	last, idle := c.lastID, len(c.streams) == 0
	c.mu.Unlock()
	c.writeControl(func() error { return c.fr.WriteGoAway(last, http2.ErrCodeNo, nil) })
	if idle {
		c.close(nil)
	}
}

// close ends the connection and every call on it; calling it again does
// nothing.
func (c *conn) close(err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	streams := make([]*stream, 0, len(c.streams))
	for _, s := range c.streams {
		streams = append(streams, s)
	}
	c.cond.Broadcast()
	c.mu.Unlock()
	if err == nil {
		// A connection closing cleanly sends what is pending (a
		// GOAWAY, the last replies) first, within a second: the
		// deadline also cuts short a flusher's write under way.
		c.nc.SetWriteDeadline(time.Now().Add(time.Second))
		c.flush(nil, time.Second)
	}
	c.wmu.Lock()
	if c.werr == nil {
		c.werr = errConnClosed
	}
	c.wcond.Broadcast()
	close(c.kick)
	c.wmu.Unlock()
	c.nc.Close()
	if err == nil {
		err = errConnClosed
	}
	for _, s := range streams {
		s.abort(err)
	}
	c.srv.forget(c)
}

// remove drops an ended stream from the table; a connection going away
// closes with its last call.
func (c *conn) remove(s *stream) {
	c.mu.Lock()
	delete(c.streams, s.id)
	closeNow := c.goingAway && len(c.streams) == 0
	c.mu.Unlock()
	if closeNow {
		c.close(nil)
	}
}
