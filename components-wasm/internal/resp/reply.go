package resp

import (
	"errors"
	"io"
	"math"
	"slices"
)

// errProtocol is a reply that does not parse as RESP2.
var errProtocol = errors.New("malformed RESP reply")

// maxDepth bounds nested arrays; maxBulk bounds one bulk string (Redis's
// own limit is 512 MB); arrays longer than maxReserve elements are not
// reserved in advance, so a bogus length cannot allocate much before the
// elements arrive.
const (
	maxDepth   = 16
	maxBulk    = 512 << 20
	maxReserve = 1024
)

// readValue reads one reply. Strings are copied into c.data and array
// elements into c.vals: the value aliases them until the next round trip.
func (c *Client) readValue(depth int) (Value, error) {
	line, err := c.r.line()
	if err != nil {
		return Value{}, err
	}
	if len(line) == 0 {
		return Value{}, errProtocol
	}
	v := Value{Kind: line[0]}
	switch v.Kind {
	case '+', '-':
		v.Str = c.keep(line[1:])
	case ':':
		n, ok := parseInt(line[1:])
		if !ok {
			return Value{}, errProtocol
		}
		v.Num = n
	case '$':
		n, ok := parseInt(line[1:])
		if !ok || n < -1 || n > maxBulk {
			return Value{}, errProtocol
		}
		if n == -1 {
			v.IsNil = true
			break
		}
		if v.Str, err = c.readBulk(int(n)); err != nil {
			return Value{}, err
		}
	case '*':
		n, ok := parseInt(line[1:])
		if !ok || n < -1 || depth >= maxDepth {
			return Value{}, errProtocol
		}
		if n == -1 {
			v.IsNil = true
			break
		}
		if v.Arr, err = c.readArray(int(n), depth); err != nil {
			return Value{}, err
		}
	default:
		return Value{}, errProtocol
	}
	return v, nil
}

// keep copies b into c.data and returns the copy.
func (c *Client) keep(b []byte) []byte {
	start := len(c.data)
	c.data = append(c.data, b...)
	return c.data[start:len(c.data):len(c.data)]
}

// readBulk reads a bulk string's n bytes and CRLF into c.data and returns
// the n bytes. Slices handed out earlier stay valid when c.data grows: they
// keep the old array.
func (c *Client) readBulk(n int) ([]byte, error) {
	c.data = slices.Grow(c.data, n+2)
	start := len(c.data)
	buf := c.data[start : start+n+2]
	if err := c.r.readFull(buf); err != nil {
		return nil, err
	}
	if buf[n] != '\r' || buf[n+1] != '\n' {
		return nil, errProtocol
	}
	c.data = c.data[:start+n]
	return buf[:n:n], nil
}

// readArray reads n elements. Up to maxReserve elements are reserved in
// c.vals and filled in place (nested arrays append after them, so when
// c.vals grows the reserved slots keep the old array, which the returned
// slice refers to); longer arrays grow as their elements arrive.
func (c *Client) readArray(n, depth int) ([]Value, error) {
	if n > maxReserve {
		arr := make([]Value, 0, maxReserve)
		for range n {
			e, err := c.readValue(depth + 1)
			if err != nil {
				return nil, err
			}
			arr = append(arr, e)
		}
		return arr, nil
	}
	start := len(c.vals)
	c.vals = slices.Grow(c.vals, n)[:start+n]
	arr := c.vals[start : start+n : start+n]
	clear(arr)
	for i := range arr {
		e, err := c.readValue(depth + 1)
		if err != nil {
			return nil, err
		}
		arr[i] = e
	}
	return arr, nil
}

// clone returns a copy of v that shares nothing with the client's buffers.
func (v Value) clone() Value {
	if v.Str != nil {
		v.Str = append([]byte{}, v.Str...)
	}
	if v.Arr != nil {
		arr := make([]Value, len(v.Arr))
		for i, e := range v.Arr {
			arr[i] = e.clone()
		}
		v.Arr = arr
	}
	return v
}

// parseInt parses a RESP integer: an optional minus sign and decimal
// digits, without a string conversion.
func parseInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var n int64
	for _, d := range b {
		if d < '0' || d > '9' || n > (math.MaxInt64-int64(d-'0'))/10 {
			return 0, false
		}
		n = n*10 + int64(d-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// reader buffers a connection for the reply parser. It does what the
// parser needs of bufio.Reader in fewer calls, each of which is costly in a
// Go guest: lines are found by a byte loop (RESP lines are short) and a bulk
// string that is already buffered is one copy.
type reader struct {
	src  io.Reader
	buf  []byte
	r, w int // buf[r:w] is buffered
}

func newReader(src io.Reader, size int) *reader {
	return &reader{src: src, buf: make([]byte, size)}
}

// fill reads more into buf, first moving what is buffered to its start
// when the end is reached.
func (rd *reader) fill() error {
	if rd.r == rd.w {
		rd.r, rd.w = 0, 0
	} else if rd.r > 0 && rd.w == len(rd.buf) {
		rd.w = copy(rd.buf, rd.buf[rd.r:rd.w])
		rd.r = 0
	}
	if rd.w == len(rd.buf) {
		return errProtocol // a line longer than the buffer
	}
	n, err := rd.src.Read(rd.buf[rd.w:])
	rd.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// line returns the next line without its CRLF; the slice is valid until
// the next read.
func (rd *reader) line() ([]byte, error) {
	scanned := 0
	for {
		for i := rd.r + scanned; i < rd.w; i++ {
			if rd.buf[i] == '\n' {
				line := rd.buf[rd.r:i]
				rd.r = i + 1
				if len(line) == 0 || line[len(line)-1] != '\r' {
					return nil, errProtocol
				}
				return line[:len(line)-1], nil
			}
		}
		scanned = rd.w - rd.r
		if err := rd.fill(); err != nil {
			return nil, err
		}
	}
}

// readFull fills p: from the buffer, then straight from the source for
// what remains when p is larger than the buffer, else through the buffer.
func (rd *reader) readFull(p []byte) error {
	n := copy(p, rd.buf[rd.r:rd.w])
	rd.r += n
	p = p[n:]
	for len(p) > 0 {
		if len(p) >= len(rd.buf) {
			_, err := io.ReadFull(rd.src, p)
			return noEOF(err)
		}
		rd.r, rd.w = 0, 0
		if err := rd.fill(); err != nil {
			return noEOF(err)
		}
		n := copy(p, rd.buf[rd.r:rd.w])
		rd.r += n
		p = p[n:]
	}
	return nil
}

// noEOF reports a reply cut short as io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
