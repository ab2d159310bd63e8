package sidecarwire

import (
	"encoding/binary"
	"errors"
	"fmt"

	"google.golang.org/grpc/mem"

	"github.com/wapr-dev/wapr/host/internal/api"
)

// The messages of the channel, framed by hand rather than by protobuf (one
// unary method, two messages, no schema to share with anyone else).
//
// Every message is
//
//	kind      1 byte: kindRequest, kindAnswer or kindError
//	headLen   uvarint: the length of head
//	head      headLen bytes, the fields below
//	body      every byte after head (no length: it is the rest)
//
// A string in head is a uvarint length and that many bytes; a number is a
// uvarint. The head of each kind holds, in order:
//
//	kindRequest  callee id, caller id, caller namespace, verb, method,
//	             query, header count,
//	             then each header's key and value; body: the request body
//	kindAnswer   status, header count, then each header's key and value;
//	             body: the app's response body
//	kindError    code (an api.Code), flags (flagMisrouted), message;
//	             body: empty
//
// Nothing may follow the last field of head. Putting the body last and
// unprefixed lets the encoder hand a large body to gRPC without copying it,
// and lets the decoder turn the whole head into strings with one
// allocation.
//
// Worked example, a GET of method "m" from app "a" (no namespace) to app
// "b", query "x=1", one header "k: v", empty body:
//
//	01  14  01 62  01 61  00  03 47 45 54  01 6d  03 78 3d 31  01  01 6b  01 76
//	kind, headLen 20, "b", "a", "", "GET", "m", "x=1", 1 header, "k", "v"
const (
	kindRequest byte = 1
	kindAnswer  byte = 2
	kindError   byte = 3
)

// flagMisrouted, in a kindError message: the called sidecar serves another
// app (api.ErrMisrouted).
const flagMisrouted = 1

// maxCode bounds the code of a kindError message; codes are small.
const maxCode = 1 << 16

var errFrame = errors.New("sidecarwire: malformed message")

// response is the called sidecar's answer: the app's response, or the
// error InvokeLocal returned (exactly one of the two is set).
type response struct {
	res *api.InvokeResponse
	err *remoteError
}

// remoteError is an error of the called sidecar, as it crossed the wire.
type remoteError struct {
	code      api.Code
	message   string
	misrouted bool
}

// codec is the gRPC codec of the channel's two messages, *api.InvokeRequest
// and *response. It is passed to the client and the server as an option, not
// registered globally. It is safe for concurrent use.
type codec struct{}

func (codec) Name() string { return "wapr" }

// maxInlineBody is the largest body Marshal copies after the head, into
// one buffer; a larger one is handed to gRPC as it is, as a second buffer.
const maxInlineBody = 16 << 10

// Marshal encodes v. A body of more than maxInlineBody bytes is not copied:
// the returned slice refers to it, so it must not change until gRPC has sent
// it (Invoke and a unary handler's return both ensure that).
func (codec) Marshal(v any) (mem.BufferSlice, error) {
	var kind byte
	var headLen int
	var body []byte
	switch m := v.(type) {
	case *api.InvokeRequest:
		kind, headLen, body = kindRequest, requestHeadLen(m), m.Body
	case *response:
		switch {
		case m.err != nil:
			kind, headLen = kindError, errorHeadLen(m.err)
		case m.res != nil:
			kind, headLen, body = kindAnswer, answerHeadLen(m.res), m.res.Body
		default:
			return nil, errors.New("sidecarwire: empty response")
		}
	default:
		return nil, fmt.Errorf("sidecarwire: cannot marshal %T", v)
	}
	n := 1 + uvarintLen(uint64(headLen)) + headLen
	var inline []byte
	if len(body) <= maxInlineBody {
		inline, body = body, nil
		n += len(inline)
	}
	var first mem.Buffer
	if mem.IsBelowBufferPoolingThreshold(n) {
		first = mem.SliceBuffer(appendMessage(make([]byte, 0, n), kind, headLen, v, inline))
	} else {
		pool := mem.DefaultBufferPool()
		buf := pool.Get(n)
		*buf = appendMessage((*buf)[:0], kind, headLen, v, inline)
		first = mem.NewBuffer(buf, pool)
	}
	if body == nil {
		return mem.BufferSlice{first}, nil
	}
	return mem.BufferSlice{first, mem.SliceBuffer(body)}, nil
}

// appendMessage appends the kind, the head of v and body to b.
func appendMessage(b []byte, kind byte, headLen int, v any, body []byte) []byte {
	b = append(b, kind)
	b = binary.AppendUvarint(b, uint64(headLen))
	switch m := v.(type) {
	case *api.InvokeRequest:
		b = appendRequestHead(b, m)
	case *response:
		if m.err != nil {
			b = appendErrorHead(b, m.err)
		} else {
			b = appendAnswerHead(b, m.res)
		}
	}
	return append(b, body...)
}

// Unmarshal decodes data into v, which must be a *api.InvokeRequest or a
// *response. v owns what it holds afterwards: nothing refers to data.
func (codec) Unmarshal(data mem.BufferSlice, v any) error {
	switch m := v.(type) {
	case *api.InvokeRequest:
		return decodeRequest(data.Materialize(), m)
	case *response:
		return decodeResponse(data.Materialize(), m)
	default:
		return fmt.Errorf("sidecarwire: cannot unmarshal into %T", v)
	}
}

// --- encoding ---

// appendRequest appends the message of req to b.
func appendRequest(b []byte, req *api.InvokeRequest) []byte {
	return appendMessage(b, kindRequest, requestHeadLen(req), req, req.Body)
}

// appendResponse appends the message of r, an answer or an error, to b.
func appendResponse(b []byte, r *response) []byte {
	if r.err != nil {
		return appendMessage(b, kindError, errorHeadLen(r.err), r, nil)
	}
	return appendMessage(b, kindAnswer, answerHeadLen(r.res), r, r.res.Body)
}

func uvarintLen(n uint64) int {
	l := 1
	for n >= 0x80 {
		n >>= 7
		l++
	}
	return l
}

func stringLen(s string) int { return uvarintLen(uint64(len(s))) + len(s) }

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func headersLen(h []api.Header) int {
	n := uvarintLen(uint64(len(h)))
	for _, kv := range h {
		n += stringLen(kv.Key) + stringLen(kv.Value)
	}
	return n
}

func appendHeaders(b []byte, h []api.Header) []byte {
	b = binary.AppendUvarint(b, uint64(len(h)))
	for _, kv := range h {
		b = appendString(appendString(b, kv.Key), kv.Value)
	}
	return b
}

func requestHeadLen(r *api.InvokeRequest) int {
	return stringLen(r.AppID) + stringLen(r.CallerAppID) + stringLen(r.CallerNamespace) + stringLen(r.Verb) +
		stringLen(r.Method) + stringLen(r.Query) + headersLen(r.Headers)
}

func appendRequestHead(b []byte, r *api.InvokeRequest) []byte {
	b = appendString(b, r.AppID)
	b = appendString(b, r.CallerAppID)
	b = appendString(b, r.CallerNamespace)
	b = appendString(b, r.Verb)
	b = appendString(b, r.Method)
	b = appendString(b, r.Query)
	return appendHeaders(b, r.Headers)
}

func answerHeadLen(r *api.InvokeResponse) int {
	return uvarintLen(uint64(r.Status)) + headersLen(r.Headers)
}

func appendAnswerHead(b []byte, r *api.InvokeResponse) []byte {
	return appendHeaders(binary.AppendUvarint(b, uint64(r.Status)), r.Headers)
}

func errorHeadLen(e *remoteError) int {
	return uvarintLen(uint64(e.code)) + 1 + stringLen(e.message)
}

func appendErrorHead(b []byte, e *remoteError) []byte {
	b = binary.AppendUvarint(b, uint64(e.code))
	var flags byte
	if e.misrouted {
		flags |= flagMisrouted
	}
	return appendString(append(b, flags), e.message)
}

// --- decoding ---

// split checks msg's kind and returns its head, as one string, and its
// body, which aliases msg.
func split(msg []byte, kind byte) (head string, body []byte, err error) {
	if len(msg) == 0 || msg[0] != kind {
		return "", nil, errFrame
	}
	n, l := binary.Uvarint(msg[1:])
	if l <= 0 || n > uint64(len(msg)-1-l) {
		return "", nil, errFrame
	}
	start := 1 + l
	end := start + int(n)
	return string(msg[start:end]), msg[end:len(msg):len(msg)], nil
}

// reader reads the fields of a head. A failed read sets bad; later reads
// return zero values.
type reader struct {
	s   string
	bad bool
}

func (r *reader) uvarint() uint64 {
	var v uint64
	for i := 0; i < len(r.s) && i < binary.MaxVarintLen64; i++ {
		c := r.s[i]
		if i == binary.MaxVarintLen64-1 && c > 1 {
			break // overflows 64 bits
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			r.s = r.s[i+1:]
			return v
		}
	}
	r.bad, r.s = true, ""
	return 0
}

func (r *reader) string() string {
	n := r.uvarint()
	if n > uint64(len(r.s)) {
		r.bad, r.s = true, ""
		return ""
	}
	s := r.s[:n]
	r.s = r.s[n:]
	return s
}

func (r *reader) headers() []api.Header {
	n := r.uvarint()
	if n == 0 || n > uint64(len(r.s))/2 { // a header takes two bytes at least
		if n != 0 {
			r.bad, r.s = true, ""
		}
		return nil
	}
	h := make([]api.Header, n)
	for i := range h {
		h[i] = api.Header{Key: r.string(), Value: r.string()}
	}
	return h
}

// done reports whether the whole head was read without error.
func (r *reader) done() bool { return !r.bad && r.s == "" }

// decodeRequest makes req the request msg holds; req.Body aliases msg.
func decodeRequest(msg []byte, req *api.InvokeRequest) error {
	head, body, err := split(msg, kindRequest)
	if err != nil {
		return err
	}
	r := reader{s: head}
	*req = api.InvokeRequest{
		AppID:           r.string(),
		CallerAppID:     r.string(),
		CallerNamespace: r.string(),
		Verb:            r.string(),
		Method:          r.string(),
		Query:           r.string(),
		Headers:         r.headers(),
		Body:            body,
	}
	if !r.done() {
		return errFrame
	}
	return nil
}

// decodeResponse makes res the answer or error msg holds; an answer's body
// aliases msg.
func decodeResponse(msg []byte, res *response) error {
	*res = response{}
	if len(msg) > 0 && msg[0] == kindError {
		head, body, err := split(msg, kindError)
		if err != nil {
			return err
		}
		r := reader{s: head}
		code := r.uvarint()
		var flags uint64
		if !r.bad && r.s != "" {
			flags = uint64(r.s[0])
			r.s = r.s[1:]
		} else {
			r.bad = true
		}
		message := r.string()
		if !r.done() || len(body) != 0 || code >= maxCode || flags&^flagMisrouted != 0 {
			return errFrame
		}
		res.err = &remoteError{code: api.Code(code), message: message, misrouted: flags&flagMisrouted != 0}
		return nil
	}
	head, body, err := split(msg, kindAnswer)
	if err != nil {
		return err
	}
	r := reader{s: head}
	status := r.uvarint()
	headers := r.headers()
	if !r.done() || status > 999 {
		return errFrame
	}
	res.res = &api.InvokeResponse{Status: int(status), Headers: headers, Body: body}
	return nil
}
