package resp

import (
	"bufio"
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
	line, err := readLine(c.r)
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
	if _, err := io.ReadFull(c.r, buf); err != nil {
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

// readLine returns a line without its CRLF; the slice is valid until the
// next read.
func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return nil, errProtocol
	}
	if err != nil {
		return nil, err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, errProtocol
	}
	return line[:len(line)-2], nil
}
