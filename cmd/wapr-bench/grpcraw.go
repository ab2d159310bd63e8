package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// rawConn is a minimal gRPC unary client over one cleartext HTTP/2
// connection (h2c with prior knowledge), written for the load generator:
// grpc-go's client costs this process more CPU per call than the HTTP
// scenarios' raw HTTP/1 client, and on a machine whose cores the load and
// the sidecar share, that cost would be charged to the sidecar's figures.
// It speaks just enough HTTP/2 for unary calls: no TLS, compression,
// metadata, deadlines on the wire (grpc-timeout) or retries.
//
// Concurrency: any number of goroutines call Invoke at once, each call on
// a stream of its own. One reader goroutine (readLoop) owns the reading
// Framer and hands every frame to its call by stream id under mu. Writers
// (callers, and the reader for acknowledgements and window updates) take
// wmu, append frames to bw, and the last writer in line flushes, so a burst
// of concurrent calls costs one write system call rather than one each
// (lockWrite, unlockWrite). Lock order: wmu before mu; the reader never
// holds mu while it takes wmu.
type rawConn struct {
	nc        net.Conn
	authority string

	// The write side, under wmu. writers counts the goroutines holding or
	// waiting for wmu. nextID and the HPACK encoder are wmu's too: stream
	// ids must rise and the encoder's table must change in the order in
	// which HEADERS reach the wire.
	writers atomic.Int32
	wmu     sync.Mutex
	bw      *bufio.Writer
	wfr     *http2.Framer
	henc    *hpack.Encoder
	hbuf    bytes.Buffer
	nextID  uint32
	werr    error // the first write error; the connection is then closed

	// mu guards the streams and what callers and the reader share about
	// the connection.
	mu      sync.Mutex
	streams map[uint32]*rawCall
	// active streams are registered ones, at most maxStreams (the
	// server's SETTINGS_MAX_CONCURRENT_STREAMS).
	active, maxStreams uint32
	maxFrame           uint32 // the server's SETTINGS_MAX_FRAME_SIZE
	initWindow         int64  // the server's SETTINGS_INITIAL_WINDOW_SIZE
	sendWindow         int64  // the connection's send window
	recvUnacked        int64  // bytes received on the connection not yet given back
	// err, once set, fails new calls: the connection was closed, failed
	// or the server sent GOAWAY. closed says Close set it.
	err    error
	closed bool
	// slotWait and windowWait are closed (and set to nil) when a stream
	// slot frees or send window grows; nil while nobody waits, so that the
	// common call allocates no channel.
	slotWait, windowWait chan struct{}
	// goAway is closed at the server's first GOAWAY (goneAway then true).
	goAway   chan struct{}
	goneAway bool
	// onSlotWait, when set (by tests), runs each time a call is about to
	// wait for a stream slot.
	onSlotWait func()

	rfr        *http2.Framer // the reader's alone
	readerDone chan struct{}
}

// rawCall is one unary call's stream. The caller owns it until it registers
// it in rawConn.streams; from then on the fields below id are mu's, and
// whoever unregisters it (the reader at the end of the reply, a failure of
// the connection, or the caller giving up) does so under mu. The reader
// and fail send on done exactly once, when they unregister it, after which
// reply and err are the caller's again.
type rawCall struct {
	id   uint32
	done chan struct{} // capacity 1

	sendWindow  int64 // the stream's send window
	recvUnacked int64 // bytes received on the stream not yet given back
	gotHeaders  bool  // the response HEADERS arrived
	// streamGone: the stream needs no RST_STREAM from the caller when it
	// stops sending: it was reset, or the server never took it.
	streamGone bool
	reply      []byte
	err        error
}

const (
	// The receive windows advertised up front, large enough that small
	// replies never wait for a WINDOW_UPDATE.
	rawStreamWindow = 1 << 20
	rawConnWindow   = 16 << 20
	// rawMaxReply is the largest reply message accepted, grpc-go's
	// default.
	rawMaxReply = 4 << 20
	// rawKeepBuffer is the largest buffer kept in a pool for the next
	// call: one huge message should not pin its memory.
	rawKeepBuffer = 64 << 10
	rawIOBuffer   = 64 << 10
	// HTTP/2's defaults, until the server's SETTINGS say otherwise.
	rawDefaultWindow   = 65535
	rawDefaultMaxFrame = 16384
	rawMaxStreamID     = 1<<31 - 1
)

var (
	errRawClosed = status.Error(codes.Canceled, "raw gRPC client: connection closed")
	// errCallEnded tells a sender waiting for send window that its call
	// ended meanwhile (the server replied early, or the connection
	// failed); the result is in the call.
	errCallEnded = errors.New("call ended")

	rawCalls = sync.Pool{New: func() any { return &rawCall{done: make(chan struct{}, 1)} }}
	rawBufs  = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}
)

// dialRaw connects to addr and exchanges the connection preface and
// SETTINGS; ctx bounds the handshake only.
func dialRaw(ctx context.Context, addr string) (*rawConn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := newRawConn(nc, addr)
	if err := c.handshake(ctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("HTTP/2 handshake with %s: %w", addr, err)
	}
	go c.readLoop()
	return c, nil
}

func newRawConn(nc net.Conn, authority string) *rawConn {
	c := &rawConn{
		nc:         nc,
		authority:  authority,
		nextID:     1,
		streams:    make(map[uint32]*rawCall),
		maxStreams: math.MaxUint32,
		maxFrame:   rawDefaultMaxFrame,
		initWindow: rawDefaultWindow,
		sendWindow: rawDefaultWindow,
		goAway:     make(chan struct{}),
		readerDone: make(chan struct{}),
	}
	c.bw = bufio.NewWriterSize(nc, rawIOBuffer)
	c.wfr = http2.NewFramer(c.bw, nil)
	c.henc = hpack.NewEncoder(&c.hbuf)
	c.rfr = http2.NewFramer(nil, bufio.NewReaderSize(nc, rawIOBuffer))
	// The decoder merges CONTINUATION frames into one MetaHeadersFrame.
	c.rfr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.rfr.SetReuseFrames()
	return c
}

// handshake sends the preface, our SETTINGS and the connection window,
// then waits for the server's first frame, which must be its SETTINGS, so
// that its limits (concurrent streams above all) hold from the first call.
func (c *rawConn) handshake(ctx context.Context) error {
	if dl, ok := ctx.Deadline(); ok {
		c.nc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(time.Now()) })
	err := c.exchangeSettings()
	if !stop() {
		// ctx ended during the handshake and may have cut it short; the
		// connection is not kept.
		return cmp.Or(err, ctx.Err())
	}
	c.nc.SetDeadline(time.Time{})
	return err
}

func (c *rawConn) exchangeSettings() error {
	c.lockWrite()
	_, c.werr = io.WriteString(c.bw, http2.ClientPreface)
	c.noteWrite(c.wfr.WriteSettings(
		http2.Setting{ID: http2.SettingEnablePush, Val: 0},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: rawStreamWindow},
	))
	c.noteWrite(c.wfr.WriteWindowUpdate(0, rawConnWindow-rawDefaultWindow))
	if err := c.unlockWrite(); err != nil {
		return err
	}
	f, err := c.rfr.ReadFrame()
	if err != nil {
		return err
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok || sf.IsAck() {
		return fmt.Errorf("server's first frame is %v, not SETTINGS", f.Header().Type)
	}
	return c.onSettings(sf)
}

// Invoke calls method (e.g. /dapr.proto.runtime.v1.Dapr/GetState) with req
// and unmarshals the answer into reply. A non-OK grpc-status comes back as
// a status error (status.Code tells it); when ctx ends first, the stream is
// reset with CANCEL and ctx.Err() returned. ctx's deadline is not sent.
func (c *rawConn) Invoke(ctx context.Context, method string, req, reply proto.Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	bp := rawBufs.Get().(*[]byte)
	msg, err := appendMessage((*bp)[:0], req)
	if err != nil {
		rawBufs.Put(bp)
		return status.Errorf(codes.Internal, "marshalling the request: %v", err)
	}
	call := rawCalls.Get().(*rawCall)
	err = c.send(ctx, call, method, msg)
	// The request is in bw or on the wire: the buffer is free.
	if cap(msg) <= rawKeepBuffer {
		*bp = msg[:0]
		rawBufs.Put(bp)
	}
	if err == nil {
		err = c.wait(ctx, call)
		if err == nil {
			err = decodeReply(call.reply, reply)
		}
	}
	call.reset()
	rawCalls.Put(call)
	return err
}

// appendMessage appends req as a gRPC message: an uncompressed flag, the
// length (4 bytes, big-endian) and the protobuf encoding.
func appendMessage(b []byte, req proto.Message) ([]byte, error) {
	b = append(b, 0, 0, 0, 0, 0)
	b, err := proto.MarshalOptions{}.MarshalAppend(b, req)
	if err != nil {
		return nil, err
	}
	binary.BigEndian.PutUint32(b[1:5], uint32(len(b)-5))
	return b, nil
}

// decodeReply checks the framing of the one reply message in b and
// unmarshals it into reply.
func decodeReply(b []byte, reply proto.Message) error {
	if len(b) < 5 {
		return status.Error(codes.Internal, "raw gRPC client: reply without a message")
	}
	if b[0] != 0 {
		return status.Error(codes.Internal, "raw gRPC client: compressed reply, but no compression was offered")
	}
	if n := binary.BigEndian.Uint32(b[1:5]); int64(n) != int64(len(b)-5) {
		return status.Errorf(codes.Internal, "raw gRPC client: reply message of %d bytes framed as %d", len(b)-5, n)
	}
	if err := proto.Unmarshal(b[5:], reply); err != nil {
		return status.Errorf(codes.Internal, "raw gRPC client: unmarshalling the reply: %v", err)
	}
	return nil
}

func (call *rawCall) reset() {
	call.id, call.sendWindow, call.recvUnacked, call.gotHeaders, call.streamGone, call.err = 0, 0, 0, false, false, nil
	call.reply = call.reply[:0]
	if cap(call.reply) > rawKeepBuffer {
		call.reply = nil
	}
}

// send opens call's stream and writes the request msg, as far as the send
// windows allow at once and the rest as WINDOW_UPDATEs come. An error
// means call is no longer registered (or never was); a nil error means the
// result will arrive on call.done.
func (c *rawConn) send(ctx context.Context, call *rawCall, path string, msg []byte) error {
	n, err := c.open(ctx, call, path, msg)
	if err != nil {
		return err
	}
	for rest := msg[n:]; len(rest) > 0; rest = rest[n:] {
		var maxFrame uint32
		n, maxFrame, err = c.awaitWindow(ctx, call, len(rest))
		if err == errCallEnded {
			// The server answered before the whole request was sent:
			// tell it no more is coming (unless the stream is reset
			// already, which must not be answered with a reset). The
			// reply waits on call.done.
			if !call.streamGone {
				c.writeReset(call.id, http2.ErrCodeCancel)
			}
			return nil
		}
		if err != nil {
			return err
		}
		c.lockWrite()
		c.writeData(call.id, rest[:n], n == len(rest), maxFrame)
		c.unlockWrite()
	}
	return nil
}

// open waits for a stream slot, registers call on a new stream and writes
// its HEADERS and the first n bytes of msg (all of it when the windows
// allow), in one turn of the write lock.
func (c *rawConn) open(ctx context.Context, call *rawCall, path string, msg []byte) (n int, err error) {
	for {
		c.lockWrite()
		c.mu.Lock()
		if c.err == nil && c.nextID > rawMaxStreamID {
			c.err = status.Error(codes.Unavailable, "raw gRPC client: stream ids exhausted on this connection")
		}
		if c.err != nil {
			err := c.err
			c.mu.Unlock()
			c.unlockWrite()
			return 0, err
		}
		if c.active < c.maxStreams {
			break
		}
		if c.slotWait == nil {
			c.slotWait = make(chan struct{})
		}
		ch := c.slotWait
		c.mu.Unlock()
		c.unlockWrite()
		if c.onSlotWait != nil {
			c.onSlotWait()
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	call.id = c.nextID
	c.nextID += 2
	call.sendWindow = c.initWindow
	c.streams[call.id] = call
	c.active++
	n = c.takeWindowLocked(call, len(msg))
	maxFrame := c.maxFrame
	c.mu.Unlock()
	c.writeHeaders(call.id, path, maxFrame)
	c.writeData(call.id, msg[:n], n == len(msg), maxFrame)
	c.unlockWrite()
	return n, nil
}

// takeWindowLocked takes up to want bytes of send window from the
// connection's and call's windows and says how many it took.
func (c *rawConn) takeWindowLocked(call *rawCall, want int) int {
	n := min(int64(want), c.sendWindow, call.sendWindow)
	if n <= 0 {
		return 0
	}
	c.sendWindow -= n
	call.sendWindow -= n
	return int(n)
}

// awaitWindow blocks until some send window is free for call and takes up
// to want bytes of it. errCallEnded: the call ended meanwhile; ctx.Err():
// ctx ended, and the call was abandoned.
func (c *rawConn) awaitWindow(ctx context.Context, call *rawCall, want int) (n int, maxFrame uint32, err error) {
	c.mu.Lock()
	for {
		if c.streams[call.id] != call {
			c.mu.Unlock()
			return 0, 0, errCallEnded
		}
		if n = c.takeWindowLocked(call, want); n > 0 {
			maxFrame = c.maxFrame
			c.mu.Unlock()
			return n, maxFrame, nil
		}
		if c.windowWait == nil {
			c.windowWait = make(chan struct{})
		}
		ch := c.windowWait
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			c.abandon(call)
			return 0, 0, ctx.Err()
		}
		c.mu.Lock()
	}
}

// wait waits for call's result, or abandons it when ctx ends first.
func (c *rawConn) wait(ctx context.Context, call *rawCall) error {
	select {
	case <-call.done:
		return call.err
	case <-ctx.Done():
		c.abandon(call)
		return ctx.Err()
	}
}

// abandon unregisters call, whose caller gives up, and resets its stream
// with CANCEL; if the call had ended already, it takes its result off done
// so that the call can be reused.
func (c *rawConn) abandon(call *rawCall) {
	c.mu.Lock()
	registered := c.streams[call.id] == call
	if registered {
		c.unregisterLocked(call)
	}
	c.mu.Unlock()
	if registered {
		c.writeReset(call.id, http2.ErrCodeCancel)
	} else {
		<-call.done
	}
}

// unregisterLocked removes call from the streams and frees its slot.
func (c *rawConn) unregisterLocked(call *rawCall) {
	delete(c.streams, call.id)
	c.active--
	if c.slotWait != nil {
		close(c.slotWait)
		c.slotWait = nil
	}
	// A sender waiting for window may be this call's.
	c.wakeWindowLocked()
	c.hangUpIfDrainedLocked()
}

// hangUpIfDrainedLocked closes the connection once the server has sent
// GOAWAY and the last call has ended, as the server waits for (grpc-go's
// waits a second for the client before it closes the connection itself).
func (c *rawConn) hangUpIfDrainedLocked() {
	if c.goneAway && c.active == 0 {
		c.nc.Close()
	}
}

// finishLocked ends call with err (nil: the reply is in call.reply) and
// hands it back to its caller; gone says the stream is reset or was never
// taken by the server (see rawCall.streamGone).
func (c *rawConn) finishLocked(call *rawCall, err error, gone bool) {
	c.unregisterLocked(call)
	call.err = err
	call.streamGone = gone
	call.done <- struct{}{}
}

func (c *rawConn) wakeWindowLocked() {
	if c.windowWait != nil {
		close(c.windowWait)
		c.windowWait = nil
	}
}

// lockWrite takes the write lock, counting the caller among the writers
// first so that the holder before it knows not to flush.
func (c *rawConn) lockWrite() {
	c.writers.Add(1)
	c.wmu.Lock()
}

// unlockWrite releases the write lock. The last writer in line flushes
// what everyone before it appended: a writer that leaves while another
// waits for the lock leaves its frames to that one. A write error closes
// the connection, and the reader then fails every call.
func (c *rawConn) unlockWrite() error {
	if c.writers.Add(-1) == 0 && c.werr == nil {
		c.werr = c.bw.Flush()
	}
	err := c.werr
	c.wmu.Unlock()
	if err != nil {
		c.nc.Close()
	}
	return err
}

// noteWrite keeps the first write error; under wmu.
func (c *rawConn) noteWrite(err error) {
	if c.werr == nil {
		c.werr = err
	}
}

// writeHeaders encodes the request's headers and writes them on stream
// id, split into CONTINUATION frames beyond maxFrame; under wmu.
func (c *rawConn) writeHeaders(id uint32, path string, maxFrame uint32) {
	c.hbuf.Reset()
	for _, f := range [...]hpack.HeaderField{
		{Name: ":method", Value: "POST"},
		{Name: ":scheme", Value: "http"},
		{Name: ":path", Value: path},
		{Name: ":authority", Value: c.authority},
		{Name: "content-type", Value: "application/grpc"},
		{Name: "te", Value: "trailers"},
	} {
		c.henc.WriteField(f)
	}
	block := c.hbuf.Bytes()
	frag := block[:min(len(block), int(maxFrame))]
	block = block[len(frag):]
	c.noteWrite(c.wfr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: frag, EndHeaders: len(block) == 0}))
	for len(block) > 0 {
		frag = block[:min(len(block), int(maxFrame))]
		block = block[len(frag):]
		c.noteWrite(c.wfr.WriteContinuation(id, len(block) == 0, frag))
	}
}

// writeData writes data on stream id in frames of at most maxFrame bytes,
// the last with END_STREAM when end; under wmu.
func (c *rawConn) writeData(id uint32, data []byte, end bool, maxFrame uint32) {
	for len(data) > 0 || end {
		chunk := data[:min(len(data), int(maxFrame))]
		data = data[len(chunk):]
		last := end && len(data) == 0
		c.noteWrite(c.wfr.WriteData(id, last, chunk))
		if last {
			return
		}
	}
}

// writeReset resets stream id.
func (c *rawConn) writeReset(id uint32, code http2.ErrCode) {
	c.lockWrite()
	c.noteWrite(c.wfr.WriteRSTStream(id, code))
	c.unlockWrite()
}

// readLoop reads the server's frames until the connection fails or is
// closed, then fails every call still registered.
func (c *rawConn) readLoop() {
	defer close(c.readerDone)
	for {
		f, err := c.rfr.ReadFrame()
		if err == nil {
			err = c.dispatch(f)
		} else if se, ok := err.(http2.StreamError); ok {
			// A malformed frame for one stream: that call fails, the
			// connection goes on.
			c.failStream(se.StreamID, status.Errorf(codes.Internal, "raw gRPC client: %v", se))
			c.writeReset(se.StreamID, se.Code)
			continue
		}
		if err != nil {
			c.fail(err)
			return
		}
	}
}

// dispatch acts on one frame; an error ends the connection.
func (c *rawConn) dispatch(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.DataFrame:
		c.onData(f)
	case *http2.MetaHeadersFrame:
		c.onHeaders(f)
	case *http2.RSTStreamFrame:
		c.failStream(f.StreamID, resetError(f.ErrCode))
	case *http2.SettingsFrame:
		if !f.IsAck() {
			return c.onSettings(f)
		}
	case *http2.PingFrame:
		if !f.IsAck() {
			c.lockWrite()
			c.noteWrite(c.wfr.WritePing(true, f.Data))
			c.unlockWrite()
		}
	case *http2.GoAwayFrame:
		c.onGoAway(f)
	case *http2.WindowUpdateFrame:
		c.onWindowUpdate(f)
	}
	// PUSH_PROMISE cannot come (SETTINGS_ENABLE_PUSH 0); PRIORITY and
	// unknown frames are ignored.
	return nil
}

// onData appends a DATA frame's bytes to its call's reply and gives the
// window back: the reply is buffered whole for its caller, so receiving a
// byte is consuming it. Window updates go out in batches of a quarter of
// the windows, so small replies rarely cost one.
func (c *rawConn) onData(f *http2.DataFrame) {
	id, n, data := f.StreamID, int64(f.Length), f.Data()
	var connInc, streamInc uint32
	reset := false
	c.mu.Lock()
	if c.recvUnacked += n; c.recvUnacked >= rawConnWindow/4 {
		connInc, c.recvUnacked = uint32(c.recvUnacked), 0
	}
	if call := c.streams[id]; call != nil {
		switch {
		case !call.gotHeaders:
			c.finishLocked(call, status.Error(codes.Internal, "raw gRPC client: DATA before the response HEADERS"), true)
			reset = true
		case len(call.reply)+len(data) > rawMaxReply+5:
			c.finishLocked(call, status.Errorf(codes.ResourceExhausted, "raw gRPC client: reply larger than %d bytes", rawMaxReply), true)
			reset = true
		case f.StreamEnded():
			call.reply = append(call.reply, data...)
			c.finishLocked(call, status.Error(codes.Internal, "raw gRPC client: server closed the stream without trailers"), false)
		default:
			call.reply = append(call.reply, data...)
			if call.recvUnacked += n; call.recvUnacked >= rawStreamWindow/4 {
				streamInc, call.recvUnacked = uint32(call.recvUnacked), 0
			}
		}
	}
	c.mu.Unlock()
	if connInc == 0 && streamInc == 0 && !reset {
		return
	}
	c.lockWrite()
	if connInc > 0 {
		c.noteWrite(c.wfr.WriteWindowUpdate(0, connInc))
	}
	if streamInc > 0 {
		c.noteWrite(c.wfr.WriteWindowUpdate(id, streamInc))
	}
	if reset {
		c.noteWrite(c.wfr.WriteRSTStream(id, http2.ErrCodeCancel))
	}
	c.unlockWrite()
}

// onHeaders takes a call's response HEADERS or its trailers. A reply is
// HEADERS (:status 200), DATA, then trailers with END_STREAM carrying
// grpc-status; one HEADERS with END_STREAM is a trailers-only reply, which
// for a unary call is always an error.
func (c *rawConn) onHeaders(f *http2.MetaHeadersFrame) {
	end := f.StreamEnded()
	var err error
	reset := false
	c.mu.Lock()
	call := c.streams[f.StreamID]
	switch {
	case call == nil:
		// An abandoned call's.
		c.mu.Unlock()
		return
	case !call.gotHeaders:
		call.gotHeaders = true
		if s := f.PseudoValue("status"); s != "200" {
			err, reset = httpStatusError(s), !end
		} else if !end {
			c.mu.Unlock()
			return
		} else if err = grpcStatus(f.RegularFields()); err == nil {
			err = status.Error(codes.Internal, "raw gRPC client: trailers-only reply with status OK and no message")
		}
	case !end:
		err, reset = status.Error(codes.Internal, "raw gRPC client: second HEADERS without END_STREAM"), true
	default:
		err = grpcStatus(f.RegularFields())
	}
	c.finishLocked(call, err, reset)
	c.mu.Unlock()
	if reset {
		c.writeReset(f.StreamID, http2.ErrCodeProtocol)
	}
}

// onSettings applies the server's SETTINGS and acknowledges them.
func (c *rawConn) onSettings(f *http2.SettingsFrame) error {
	tableSize, hasTableSize := uint32(0), false
	c.mu.Lock()
	err := f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			return err
		}
		switch s.ID {
		case http2.SettingMaxFrameSize:
			c.maxFrame = s.Val
		case http2.SettingMaxConcurrentStreams:
			c.maxStreams = s.Val
		case http2.SettingInitialWindowSize:
			// The change applies to every open stream's window.
			delta := int64(s.Val) - c.initWindow
			c.initWindow = int64(s.Val)
			for _, call := range c.streams {
				call.sendWindow += delta
			}
		case http2.SettingHeaderTableSize:
			tableSize, hasTableSize = s.Val, true
		}
		return nil
	})
	if c.slotWait != nil {
		close(c.slotWait)
		c.slotWait = nil
	}
	c.wakeWindowLocked()
	c.mu.Unlock()
	if err != nil {
		return err
	}
	c.lockWrite()
	if hasTableSize {
		// Before the ack: the server's decoder holds us to the new size
		// from then on.
		c.henc.SetMaxDynamicTableSizeLimit(tableSize)
	}
	c.noteWrite(c.wfr.WriteSettingsAck())
	c.unlockWrite()
	return nil
}

// onGoAway stops new calls and fails those on streams the server will not
// process; the others run to their end.
func (c *rawConn) onGoAway(f *http2.GoAwayFrame) {
	err := status.Errorf(codes.Unavailable, "raw gRPC client: server sent GOAWAY (%v, last stream %d)", f.ErrCode, f.LastStreamID)
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	for id, call := range c.streams {
		if id > f.LastStreamID {
			c.finishLocked(call, err, true)
		}
	}
	if !c.goneAway {
		c.goneAway = true
		close(c.goAway)
	}
	if c.slotWait != nil {
		close(c.slotWait)
		c.slotWait = nil
	}
	c.hangUpIfDrainedLocked()
	c.mu.Unlock()
}

func (c *rawConn) onWindowUpdate(f *http2.WindowUpdateFrame) {
	c.mu.Lock()
	if f.StreamID == 0 {
		c.sendWindow += int64(f.Increment)
	} else if call := c.streams[f.StreamID]; call != nil {
		call.sendWindow += int64(f.Increment)
	}
	c.wakeWindowLocked()
	c.mu.Unlock()
}

// failStream ends stream id's call, if it is still registered, with err;
// the stream is reset (by the server, or by the reader next).
func (c *rawConn) failStream(id uint32, err error) {
	c.mu.Lock()
	if call := c.streams[id]; call != nil {
		c.finishLocked(call, err, true)
	}
	c.mu.Unlock()
}

// fail ends the connection after a read error: every registered call
// fails, with errRawClosed after Close, and so does every call to come
// (with the GOAWAY's error, if there was one).
func (c *rawConn) fail(err error) {
	c.mu.Lock()
	if c.closed {
		err = errRawClosed
	} else {
		err = status.Errorf(codes.Unavailable, "raw gRPC client: connection to %s lost: %v", c.authority, err)
	}
	if c.err == nil {
		c.err = err
	}
	for _, call := range c.streams {
		c.finishLocked(call, err, true)
	}
	if c.slotWait != nil {
		close(c.slotWait)
		c.slotWait = nil
	}
	c.wakeWindowLocked()
	c.mu.Unlock()
	c.nc.Close()
}

// Close closes the connection; calls waiting on it fail with errRawClosed.
// It returns when the reader has ended.
func (c *rawConn) Close() error {
	c.mu.Lock()
	c.closed = true
	if c.err == nil {
		c.err = errRawClosed
	}
	c.mu.Unlock()
	err := c.nc.Close()
	<-c.readerDone
	return err
}

// grpcStatus is the error a reply's trailers carry: nil for grpc-status 0,
// else a status error with the code and the (percent-decoded)
// grpc-message.
func grpcStatus(fields []hpack.HeaderField) error {
	code, msg, found := 0, "", false
	for _, hf := range fields {
		switch hf.Name {
		case "grpc-status":
			n, err := strconv.Atoi(hf.Value)
			if err != nil || n < 0 {
				return status.Errorf(codes.Internal, "raw gRPC client: malformed grpc-status %q", hf.Value)
			}
			code, found = n, true
		case "grpc-message":
			msg = decodeGRPCMessage(hf.Value)
		}
	}
	if !found {
		return status.Error(codes.Internal, "raw gRPC client: reply without grpc-status")
	}
	if code == 0 {
		return nil
	}
	return status.Error(codes.Code(code), msg)
}

// decodeGRPCMessage undoes grpc-message's percent-encoding; a '%' not
// followed by two hex digits stays as it is.
func decodeGRPCMessage(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if ok1 && ok2 {
				b = append(b, hi<<4|lo)
				i += 2
				continue
			}
		}
		b = append(b, s[i])
	}
	return string(b)
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// httpStatusError is the error for a reply whose :status is not 200, with
// the codes gRPC's HTTP mapping gives.
func httpStatusError(s string) error {
	code := codes.Unknown
	switch s {
	case "400":
		code = codes.Internal
	case "401":
		code = codes.Unauthenticated
	case "403":
		code = codes.PermissionDenied
	case "404":
		code = codes.Unimplemented
	case "429", "502", "503", "504":
		code = codes.Unavailable
	}
	return status.Errorf(code, "raw gRPC client: unexpected HTTP status %q", s)
}

// resetError is the error for a stream the server reset.
func resetError(code http2.ErrCode) error {
	c := codes.Internal
	switch code {
	case http2.ErrCodeCancel:
		c = codes.Canceled
	case http2.ErrCodeRefusedStream:
		c = codes.Unavailable
	case http2.ErrCodeEnhanceYourCalm:
		c = codes.ResourceExhausted
	case http2.ErrCodeInadequateSecurity:
		c = codes.PermissionDenied
	}
	return status.Errorf(c, "raw gRPC client: stream reset by the server (%v)", code)
}
