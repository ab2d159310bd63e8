package h2grpc

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// stream is one call.
type stream struct {
	c   *conn
	id  uint32
	m   *method
	max int // the largest message taken
	// ctx is the call's: it carries the request metadata and the stream
	// (grpc.ServerTransportStreamFromContext), and it is canceled when the
	// call ends, is reset or its connection closes, or at grpc-timeout.
	ctx    context.Context
	cancel context.CancelFunc

	// Guarded by c.mu.
	sendWindow int64
	ended      bool // nothing more may be written: the call ended or was reset

	// The receive side, guarded by rmu.
	rmu      sync.Mutex
	rbuf     *[]byte // bytes received and not yet taken as messages
	rdone    bool    // the client ended its side (END_STREAM)
	rerr     error   // why the call ended before its client's side did
	tooLarge bool    // a message over max arrived: the call fails, later data is dropped
	started  bool    // a unary call was handed to a worker
	unacked  int     // bytes received whose window was not given back yet
	counted  int     // len(*rbuf) as counted in c.buffered
	notify   chan struct{}

	// The reply's metadata, guarded by hmu.
	hmu        sync.Mutex
	header     metadata.MD
	trailer    metadata.MD
	headerSent bool
}

// The stream is what grpc.SetHeader and friends find in the call's context.
var _ grpc.ServerTransportStream = (*stream)(nil)

// open starts a call on stream id from its request header fields.
func (c *conn) open(id uint32, fields []hpack.HeaderField, endStream bool) error {
	c.mu.Lock()
	refuse := c.goingAway || c.closed || len(c.streams) >= maxStreams
	c.mu.Unlock()
	if refuse {
		return c.writeControl(func() error { return c.fr.WriteRSTStream(id, http2.ErrCodeRefusedStream) })
	}
	var path, httpMethod, contentType, timeout, encoding string
	md := make(metadata.MD, len(fields))
	// One backing array holds the values: a key's first value is a
	// one-element slice of it, so most keys cost no allocation of their
	// own (a repeated key's append copies out).
	vals := make([]string, 0, len(fields))
	add := func(k, v string) {
		if vs, ok := md[k]; ok {
			md[k] = append(vs, v)
			return
		}
		vals = append(vals, v)
		md[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	for _, f := range fields {
		switch f.Name {
		case ":path":
			path = f.Value
		case ":method":
			httpMethod = f.Value
		case ":scheme":
		case ":authority":
			add(f.Name, f.Value)
		case "content-type":
			contentType = f.Value
			add(f.Name, f.Value)
		case "te", "grpc-accept-encoding", "grpc-message-type":
		case "grpc-timeout":
			timeout = f.Value
		case "grpc-encoding":
			encoding = f.Value
		default:
			if strings.HasPrefix(f.Name, ":") {
				return c.writeControl(func() error { return c.fr.WriteRSTStream(id, http2.ErrCodeProtocol) })
			}
			v := f.Value
			if strings.HasSuffix(f.Name, "-bin") {
				b, err := decodeBinary(v)
				if err != nil {
					return c.refuse(id, status.New(codes.Internal, fmt.Sprintf("malformed binary metadata %q: %v", f.Name, err)))
				}
				v = string(b)
			}
			add(f.Name, v)
		}
	}
	if httpMethod != "POST" {
		return c.answerHTTP(id, "405")
	}
	if contentType != "application/grpc" && !strings.HasPrefix(contentType, "application/grpc+") && !strings.HasPrefix(contentType, "application/grpc;") {
		return c.answerHTTP(id, "415")
	}
	m := c.srv.methods[path]
	if m == nil {
		return c.refuse(id, status.New(codes.Unimplemented, c.srv.unknown(path)))
	}
	if encoding != "" && encoding != "identity" {
		return c.refuse(id, status.Newf(codes.Unimplemented, "grpc: Decompressor is not installed for grpc-encoding %q", encoding))
	}
	ctx, cancel := context.Background(), context.CancelFunc(nil)
	if timeout != "" {
		d, ok := parseTimeout(timeout)
		if !ok {
			return c.refuse(id, status.Newf(codes.Internal, "malformed grpc-timeout %q", timeout))
		}
		ctx, cancel = context.WithTimeout(ctx, d)
	} else {
		ctx, cancel = context.WithCancel(ctx)
	}
	s := &stream{c: c, id: id, m: m, max: c.srv.opts.MaxRecvMsgSize, cancel: cancel}
	s.ctx = grpc.NewContextWithServerTransportStream(metadata.NewIncomingContext(ctx, md), s)
	if m.stream != nil {
		s.notify = make(chan struct{}, 1)
	}
	// Set before the stream is in the table, where others may see it.
	s.rdone = endStream
	s.started = endStream && m.stream == nil
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		cancel()
		return nil
	}
	s.sendWindow = c.peerWindow
	c.streams[id] = s
	c.mu.Unlock()
	switch {
	case m.stream != nil:
		go s.runStream()
	case s.started:
		c.srv.run(s.runUnary)
	}
	return nil
}

// unknown says what grpc-go says of a path no method serves.
func (s *Server) unknown(path string) string {
	svc, name, ok := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	if !ok {
		return fmt.Sprintf("malformed method name: %q", path)
	}
	if !s.services[svc] {
		return fmt.Sprintf("unknown service %v", svc)
	}
	return fmt.Sprintf("unknown method %v for service %v", name, svc)
}

// refuse answers a call that will not run with st, in one HEADERS frame.
func (c *conn) refuse(id uint32, st *status.Status) error {
	fields := append(replyHeaders(nil), statusFields(st, nil)...)
	return c.writeControl(func() error { return c.writeHeaders(id, fields, true) })
}

// answerHTTP answers a request that is not a gRPC call with an HTTP
// status, as grpc-go does.
func (c *conn) answerHTTP(id uint32, code string) error {
	fields := []hpack.HeaderField{{Name: ":status", Value: code}}
	return c.writeControl(func() error { return c.writeHeaders(id, fields, true) })
}

// onData takes a DATA frame's payload. The stream's window is given back
// as bytes arrive while they stay within a message's bound, so a message
// larger than the window still arrives; beyond it the call fails.
func (s *stream) onData(p []byte, end bool) {
	s.rmu.Lock()
	if s.rdone {
		s.rmu.Unlock()
		s.c.resetStream(s.id, http2.ErrCodeStreamClosed)
		return
	}
	overflow := false
	if !s.tooLarge && s.c.buffered.Load()+int64(len(p)) > s.c.srv.maxBuffered {
		// The connection's calls hold as much as one connection may;
		// this one is refused rather than the memory grown.
		s.rmu.Unlock()
		s.c.resetStream(s.id, http2.ErrCodeEnhanceYourCalm)
		return
	}
	if !s.tooLarge {
		if s.rbuf == nil {
			s.rbuf = getBuf()
		}
		*s.rbuf = append(*s.rbuf, p...)
		switch {
		case s.oversize():
			// A unary call fails now rather than when the client
			// has sent all of it; a stream's next RecvMsg fails.
			s.tooLarge = true
			s.dropBuffer()
		case len(*s.rbuf) > s.max+5+streamWindow:
			overflow = true // more than the window given
		}
		s.count()
	}
	s.unacked += len(p)
	give := s.giveBack(end)
	if end {
		s.rdone = true
	}
	dispatch := s.m.stream == nil && !s.started && (end || s.tooLarge)
	if dispatch {
		s.started = true
	}
	s.rmu.Unlock()
	if overflow {
		s.c.resetStream(s.id, http2.ErrCodeFlowControl)
		return
	}
	if give > 0 {
		s.c.writeControl(func() error { return s.c.fr.WriteWindowUpdate(s.id, uint32(give)) })
	}
	if s.notify != nil {
		s.signal()
	}
	if dispatch {
		s.c.srv.run(s.runUnary)
	}
}

// giveBack says how much of the stream's window to give back now: once a
// quarter of it is used, while what waits in the buffer stays within one
// message's bound (beyond that the client waits for the handler to take
// messages). Nothing once the client's side ended. Called with rmu.
func (s *stream) giveBack(end bool) int {
	if end || s.unacked < streamWindow/4 {
		return 0
	}
	if !s.tooLarge && s.rbuf != nil && len(*s.rbuf) > s.max+5 {
		return 0
	}
	give := s.unacked
	s.unacked = 0
	return give
}

// count brings the connection's count of buffered bytes up to date with
// this stream's buffer. Called with rmu.
func (s *stream) count() {
	n := 0
	if s.rbuf != nil {
		n = len(*s.rbuf)
	}
	if n != s.counted {
		s.c.buffered.Add(int64(n - s.counted))
		s.counted = n
	}
}

// oversize reports whether the buffered bytes hold a message larger than
// s.max, or more than one message of a unary call could. Called with rmu.
func (s *stream) oversize() bool {
	b := *s.rbuf
	if len(b) >= 5 && int64(binary.BigEndian.Uint32(b[1:5])) > int64(s.max) {
		return true
	}
	return s.m.stream == nil && len(b) > s.max+5
}

// endRecv marks the client's side ended (trailers).
func (s *stream) endRecv() {
	s.rmu.Lock()
	s.rdone = true
	dispatch := s.m.stream == nil && !s.started
	s.started = true
	s.rmu.Unlock()
	if s.notify != nil {
		s.signal()
	}
	if dispatch {
		s.c.srv.run(s.runUnary)
	}
}

func (s *stream) signal() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// abort ends the call from outside: a reset, or its connection closing.
func (s *stream) abort(err error) {
	c := s.c
	c.mu.Lock()
	s.ended = true
	c.cond.Broadcast()
	c.mu.Unlock()
	s.rmu.Lock()
	if s.rerr == nil {
		s.rerr = err
	}
	if !s.started || s.m.stream != nil {
		// No message will be taken from the buffer again (a unary
		// call's worker, when one runs, lets it go in finish).
		s.dropBuffer()
	}
	s.rmu.Unlock()
	if s.notify != nil {
		s.signal()
	}
	s.cancel()
	c.remove(s)
}

// dropBuffer lets the receive buffer go. Called with rmu.
func (s *stream) dropBuffer() {
	if s.rbuf != nil {
		putBuf(s.rbuf)
		s.rbuf = nil
	}
	s.count()
}

// finish ends the call once its reply is written: a client still sending
// is told to stop (RST_STREAM NO_ERROR, as HTTP/2 has it), and the
// call's context is canceled.
func (s *stream) finish() {
	c := s.c
	c.mu.Lock()
	wasEnded := s.ended
	s.ended = true
	c.mu.Unlock()
	s.rmu.Lock()
	halfClosed := s.rdone
	s.dropBuffer()
	s.rmu.Unlock()
	if !wasEnded && !halfClosed {
		c.writeControl(func() error { return c.fr.WriteRSTStream(s.id, http2.ErrCodeNo) })
	}
	s.cancel()
	c.remove(s)
}

// runUnary runs a unary call whose request has arrived.
func (s *stream) runUnary() {
	defer s.finish()
	if s.tooLarge {
		s.writeStatus(s.tooLargeError())
		return
	}
	reply, err := s.m.unary(s.m.impl, s.ctx, s.decodeUnary, s.c.srv.unary)
	if err != nil {
		s.writeStatus(err)
		return
	}
	s.writeReply(reply)
}

func (s *stream) tooLargeError() error {
	return status.Errorf(codes.ResourceExhausted, "grpc: received message larger than max (%d)", s.max)
}

// decodeUnary decodes the one request message of a unary call. The
// message copies what it keeps, so the buffer is reused after the call.
func (s *stream) decodeUnary(v any) error {
	var b []byte
	if s.rbuf != nil {
		b = *s.rbuf
	}
	if len(b) < 5 {
		return status.Error(codes.Internal, "grpc: no request message")
	}
	n := int(binary.BigEndian.Uint32(b[1:5]))
	if b[0] != 0 {
		return status.Error(codes.Unimplemented, "grpc: compressed messages are not supported")
	}
	if len(b) != 5+n {
		return status.Error(codes.Internal, "grpc: a unary call must carry exactly one request message")
	}
	return unmarshal(b[5:], v)
}

func unmarshal(b []byte, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return status.Errorf(codes.Internal, "grpc: cannot decode into %T", v)
	}
	if err := proto.Unmarshal(b, m); err != nil {
		return status.Errorf(codes.Internal, "grpc: error unmarshalling request: %v", err)
	}
	return nil
}

// marshal encodes v as a length-prefixed message in a pooled buffer, which
// the caller puts back.
func marshal(v any) (*[]byte, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, status.Errorf(codes.Internal, "grpc: cannot encode %T", v)
	}
	buf := getBuf()
	b, err := proto.MarshalOptions{}.MarshalAppend(append((*buf)[:0], 0, 0, 0, 0, 0), m)
	if err != nil {
		putBuf(buf)
		return nil, status.Errorf(codes.Internal, "grpc: error marshalling reply: %v", err)
	}
	binary.BigEndian.PutUint32(b[1:5], uint32(len(b)-5))
	*buf = b
	return buf, nil
}

// writeReply writes a unary call's reply: headers, the message and the
// trailers, in one locked write when the windows take the message whole.
func (s *stream) writeReply(reply any) {
	buf, err := marshal(reply)
	if err != nil {
		s.writeStatus(err)
		return
	}
	defer putBuf(buf)
	header, trailer, headerSent := s.takeMetadata()
	var hfields []hpack.HeaderField
	if !headerSent {
		hfields = replyHeaders(header)
	}
	tfields := okTrailers
	if len(trailer) > 0 {
		tfields = statusFields(nil, trailer)
	}
	c := s.c
	if c.fits(s, len(*buf)) {
		err := c.lockWrite()
		if err == nil && hfields != nil {
			err = c.writeHeaders(s.id, hfields, false)
		}
		if err == nil {
			err = c.fr.WriteData(s.id, false, *buf)
		}
		if err == nil {
			err = c.writeHeaders(s.id, tfields, true)
		}
		c.unlockWrite(err)
		return
	}
	if hfields != nil && s.writeFields(hfields, false) != nil {
		return
	}
	if s.sendData(*buf) != nil {
		return
	}
	s.writeFields(tfields, true)
}

// writeStatus ends the call with err's status (OK for nil): trailers, or
// a trailers-only reply when no header was sent.
func (s *stream) writeStatus(err error) {
	var st *status.Status
	if err != nil {
		var ok bool
		if st, ok = status.FromError(err); !ok {
			st = status.FromContextError(err)
		}
	}
	header, trailer, headerSent := s.takeMetadata()
	fields := statusFields(st, trailer)
	switch {
	case !headerSent && len(header) > 0:
		// Headers a handler set go in a header block of their own, as
		// grpc-go sends them: a client reads a trailers-only reply's
		// fields as trailers, not headers.
		if s.writeFields(replyHeaders(header), false) != nil {
			return
		}
	case !headerSent:
		fields = append(replyHeaders(nil), fields...)
	}
	s.writeFields(fields, true)
}

// takeMetadata returns the reply's header and trailer and whether the
// header went out already; from now on the header counts as sent.
func (s *stream) takeMetadata() (header, trailer metadata.MD, headerSent bool) {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	header, trailer, headerSent = s.header, s.trailer, s.headerSent
	s.headerSent = true
	return header, trailer, headerSent
}

// writeFields writes a header block on the stream unless it has ended.
func (s *stream) writeFields(fields []hpack.HeaderField, end bool) error {
	c := s.c
	c.mu.Lock()
	ended := s.ended || c.closed
	c.mu.Unlock()
	if ended {
		return errStreamEnded
	}
	err := c.lockWrite()
	if err == nil {
		err = c.writeHeaders(s.id, fields, end)
	}
	return c.unlockWrite(err)
}

// sendData writes b in DATA frames as the windows allow.
func (s *stream) sendData(b []byte) error {
	c := s.c
	for len(b) > 0 {
		n, err := c.takeWindow(s, len(b))
		if err != nil {
			return err
		}
		if err := c.lockWrite(); err != nil {
			return c.unlockWrite(err)
		}
		err = c.fr.WriteData(s.id, false, b[:n])
		if err = c.unlockWrite(err); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// Method, SetHeader, SendHeader and SetTrailer serve grpc.SetHeader and
// its friends.
func (s *stream) Method() string { return s.m.name }

func (s *stream) SetHeader(md metadata.MD) error {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	if s.headerSent {
		return status.Error(codes.Internal, "grpc: the header was sent already")
	}
	s.header = metadata.Join(s.header, md)
	return nil
}

func (s *stream) SendHeader(md metadata.MD) error {
	if err := s.SetHeader(md); err != nil {
		return err
	}
	return s.sendHeader()
}

// sendHeader writes the reply's header block unless it went out already.
func (s *stream) sendHeader() error {
	s.hmu.Lock()
	header, headerSent := s.header, s.headerSent
	s.headerSent = true
	s.hmu.Unlock()
	if headerSent {
		return nil
	}
	return s.writeFields(replyHeaders(header), false)
}

func (s *stream) SetTrailer(md metadata.MD) error {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	s.trailer = metadata.Join(s.trailer, md)
	return nil
}

// runStream runs a streaming call from its first frame.
func (s *stream) runStream() {
	defer s.finish()
	ss := &serverStream{s: s}
	d := s.m.stream
	var err error
	if ic := s.c.srv.stream; ic != nil {
		info := &grpc.StreamServerInfo{FullMethod: s.m.name, IsClientStream: d.ClientStreams, IsServerStream: d.ServerStreams}
		err = ic(s.m.impl, ss, info, d.Handler)
	} else {
		err = d.Handler(s.m.impl, ss)
	}
	s.writeStatus(err)
}

// serverStream is a streaming call's grpc.ServerStream. SendMsg and
// RecvMsg may be called from two goroutines, each from one at a time.
type serverStream struct{ s *stream }

var _ grpc.ServerStream = (*serverStream)(nil)

func (ss *serverStream) Context() context.Context        { return ss.s.ctx }
func (ss *serverStream) SetHeader(md metadata.MD) error  { return ss.s.SetHeader(md) }
func (ss *serverStream) SendHeader(md metadata.MD) error { return ss.s.SendHeader(md) }
func (ss *serverStream) SetTrailer(md metadata.MD)       { ss.s.SetTrailer(md) }

func (ss *serverStream) SendMsg(m any) error {
	s := ss.s
	buf, err := marshal(m)
	if err != nil {
		return err
	}
	defer putBuf(buf)
	if err := s.sendHeader(); err != nil {
		return s.sendError(err)
	}
	if err := s.sendData(*buf); err != nil {
		return s.sendError(err)
	}
	return nil
}

// sendError says why a message could not be sent: the call's context's
// end when it has one.
func (s *stream) sendError(err error) error {
	if cerr := s.ctx.Err(); cerr != nil {
		return status.FromContextError(cerr).Err()
	}
	return status.Error(codes.Unavailable, err.Error())
}

func (ss *serverStream) RecvMsg(m any) error {
	s := ss.s
	for {
		s.rmu.Lock()
		ok, give, err := s.takeMessage(m)
		s.rmu.Unlock()
		if give > 0 {
			s.c.writeControl(func() error { return s.c.fr.WriteWindowUpdate(s.id, uint32(give)) })
		}
		if ok || err != nil {
			return err
		}
		select {
		case <-s.notify:
		case <-s.ctx.Done():
			return status.FromContextError(s.ctx.Err()).Err()
		}
	}
}

// takeMessage decodes the next whole message from the buffer into m (ok),
// or says why none is to come (err); with neither, the caller waits. It
// returns the window to give back. Called with rmu held.
func (s *stream) takeMessage(m any) (ok bool, give int, err error) {
	if s.tooLarge {
		return false, 0, s.tooLargeError()
	}
	if s.rbuf != nil {
		b := *s.rbuf
		if len(b) >= 5 {
			if b[0] != 0 {
				return false, 0, status.Error(codes.Unimplemented, "grpc: compressed messages are not supported")
			}
			n := int(binary.BigEndian.Uint32(b[1:5]))
			if len(b) >= 5+n {
				// The message copies what it keeps, so the
				// buffer moves down after.
				err := unmarshal(b[5:5+n], m)
				*s.rbuf = append(b[:0], b[5+n:]...)
				s.count()
				return true, s.giveBack(s.rdone), err
			}
		}
	}
	if s.rerr != nil {
		return false, 0, status.Error(codes.Canceled, s.rerr.Error())
	}
	if s.rdone {
		if s.rbuf != nil && len(*s.rbuf) > 0 {
			return false, 0, status.Error(codes.Internal, "grpc: the client's side ended in the middle of a message")
		}
		return false, 0, io.EOF
	}
	return false, 0, nil
}

// Header fields of replies.
var (
	okHeaders  = []hpack.HeaderField{{Name: ":status", Value: "200"}, {Name: "content-type", Value: "application/grpc"}}
	okTrailers = []hpack.HeaderField{{Name: "grpc-status", Value: "0"}}
)

// replyHeaders is a reply's header block with md; the shared okHeaders
// when md is empty (the caller must not append to it in place then).
func replyHeaders(md metadata.MD) []hpack.HeaderField {
	if len(md) == 0 {
		return okHeaders[:len(okHeaders):len(okHeaders)]
	}
	return appendMD(append([]hpack.HeaderField(nil), okHeaders...), md)
}

// statusFields is a trailer block: st (OK when nil) and md.
func statusFields(st *status.Status, md metadata.MD) []hpack.HeaderField {
	if st == nil || st.Code() == codes.OK {
		if len(md) == 0 {
			return okTrailers[:1:1]
		}
		return appendMD([]hpack.HeaderField{okTrailers[0]}, md)
	}
	fields := []hpack.HeaderField{{Name: "grpc-status", Value: strconv.Itoa(int(st.Code()))}}
	if msg := st.Message(); msg != "" {
		fields = append(fields, hpack.HeaderField{Name: "grpc-message", Value: encodeMessage(msg), Sensitive: true})
	}
	if p := st.Proto(); len(p.GetDetails()) > 0 {
		if b, err := proto.Marshal(p); err == nil {
			fields = append(fields, hpack.HeaderField{Name: "grpc-status-details-bin", Value: base64.RawStdEncoding.EncodeToString(b), Sensitive: true})
		}
	}
	return appendMD(fields, md)
}

// appendMD appends md's pairs, binary values base64-encoded. Names gRPC
// reserves are left out.
func appendMD(fields []hpack.HeaderField, md metadata.MD) []hpack.HeaderField {
	for k, vs := range md {
		k = strings.ToLower(k)
		if reserved(k) {
			continue
		}
		bin := strings.HasSuffix(k, "-bin")
		for _, v := range vs {
			if bin {
				v = base64.RawStdEncoding.EncodeToString([]byte(v))
			}
			fields = append(fields, hpack.HeaderField{Name: k, Value: v})
		}
	}
	return fields
}

func reserved(k string) bool {
	switch k {
	case "content-type", "te", "grpc-status", "grpc-message", "grpc-status-details-bin", "grpc-timeout", "grpc-encoding", "grpc-accept-encoding", "grpc-message-type":
		return true
	}
	return strings.HasPrefix(k, ":")
}

// encodeMessage percent-encodes a status message as gRPC's wire wants it:
// bytes outside printable ASCII, and '%'.
func encodeMessage(msg string) string {
	clean := true
	for i := 0; i < len(msg); i++ {
		if c := msg[i]; c < 0x20 || c > 0x7e || c == '%' {
			clean = false
			break
		}
	}
	if clean {
		return msg
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(msg); i++ {
		if c := msg[i]; c < 0x20 || c > 0x7e || c == '%' {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// decodeBinary decodes a -bin metadata value, padded or not.
func decodeBinary(v string) ([]byte, error) {
	if len(v)%4 == 0 {
		return base64.StdEncoding.DecodeString(v)
	}
	return base64.RawStdEncoding.DecodeString(v)
}

// parseTimeout reads a grpc-timeout value: at most 8 digits and a unit.
func parseTimeout(v string) (time.Duration, bool) {
	if len(v) < 2 || len(v) > 9 {
		return 0, false
	}
	n, err := strconv.ParseInt(v[:len(v)-1], 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	var unit time.Duration
	switch v[len(v)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, false
	}
	if n > int64(1<<63-1)/int64(unit) {
		return time.Duration(1<<63 - 1), true
	}
	return time.Duration(n) * unit, true
}

// bufs holds message buffers: requests as they arrive, replies as they are
// marshalled. Buffers that grew large are let go.
var bufs = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

func getBuf() *[]byte { b := bufs.Get().(*[]byte); *b = (*b)[:0]; return b }

func putBuf(b *[]byte) {
	if cap(*b) <= 64<<10 {
		bufs.Put(b)
	}
}
