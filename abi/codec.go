package abi

import (
	"encoding/binary"
	"errors"
	"math"
	"sort"
)

// Wire types of a field.
type Type uint8

const (
	// TypeU64 payload: exactly 8 bytes, little-endian unsigned integer.
	TypeU64 Type = 1
	// TypeBytes payload: raw bytes (strings are UTF-8).
	TypeBytes Type = 2
	// TypeMessage payload: a nested message (a sequence of fields).
	TypeMessage Type = 3
	// TypeMap payload: u32 count, then count × (u32 klen, key, u32 vlen,
	// value). Encoders write keys in ascending byte order without
	// duplicates; decoders accept any order and keep the last duplicate.
	TypeMap Type = 4
)

// FieldHeaderSize is the size of a field header: u16 tag, u8 type, u32 len.
const FieldHeaderSize = 7

// Errors from decoding.
var (
	ErrTruncated = errors.New("abi: message truncated")
	ErrWireType  = errors.New("abi: unexpected wire type")
	ErrMalformed = errors.New("abi: malformed field")
)

// Encoder appends fields to a byte slice. The zero value is ready to use;
// Reset reuses a buffer. An Encoder is not safe for concurrent use.
type Encoder struct {
	buf []byte
}

// Reset makes the encoder append to buf[:0].
func (e *Encoder) Reset(buf []byte) { e.buf = buf[:0] }

// Bytes returns the encoded message. It aliases the encoder's buffer.
func (e *Encoder) Bytes() []byte { return e.buf }

func (e *Encoder) header(tag uint16, t Type, n int) {
	e.buf = binary.LittleEndian.AppendUint16(e.buf, tag)
	e.buf = append(e.buf, byte(t))
	e.buf = binary.LittleEndian.AppendUint32(e.buf, uint32(n))
}

// U64 appends an integer field.
func (e *Encoder) U64(tag uint16, v uint64) {
	e.header(tag, TypeU64, 8)
	e.buf = binary.LittleEndian.AppendUint64(e.buf, v)
}

// Blob appends a bytes field.
func (e *Encoder) Blob(tag uint16, b []byte) {
	e.header(tag, TypeBytes, len(b))
	e.buf = append(e.buf, b...)
}

// String appends a bytes field holding s.
func (e *Encoder) String(tag uint16, s string) {
	e.header(tag, TypeBytes, len(s))
	e.buf = append(e.buf, s...)
}

// OptString appends s unless it is empty.
func (e *Encoder) OptString(tag uint16, s string) {
	if s != "" {
		e.String(tag, s)
	}
}

// OptU64 appends v unless it is zero.
func (e *Encoder) OptU64(tag uint16, v uint64) {
	if v != 0 {
		e.U64(tag, v)
	}
}

// Map appends a map field, keys sorted so equal maps encode equally. An
// empty or nil map is not written.
func (e *Encoder) Map(tag uint16, m map[string]string) {
	if len(m) == 0 {
		return
	}
	keys := make([]string, 0, len(m))
	n := 4
	for k, v := range m {
		keys = append(keys, k)
		n += 8 + len(k) + len(v)
	}
	sort.Strings(keys)
	e.header(tag, TypeMap, n)
	e.buf = binary.LittleEndian.AppendUint32(e.buf, uint32(len(m)))
	for _, k := range keys {
		v := m[k]
		e.buf = binary.LittleEndian.AppendUint32(e.buf, uint32(len(k)))
		e.buf = append(e.buf, k...)
		e.buf = binary.LittleEndian.AppendUint32(e.buf, uint32(len(v)))
		e.buf = append(e.buf, v...)
	}
}

// Begin starts a nested message field; End(mark) finishes it.
func (e *Encoder) Begin(tag uint16) (mark int) {
	e.header(tag, TypeMessage, 0)
	return len(e.buf)
}

// End patches the length of the nested message started at mark.
func (e *Encoder) End(mark int) {
	binary.LittleEndian.PutUint32(e.buf[mark-4:mark], uint32(len(e.buf)-mark))
}

// Decoder walks the fields of one message. Payloads alias the input: copy
// what must outlive it. A Decoder is not safe for concurrent use.
type Decoder struct {
	buf []byte
	err error
}

// NewDecoder returns a decoder over msg.
func NewDecoder(msg []byte) Decoder { return Decoder{buf: msg} }

// Next returns the next field. ok is false at the end of the message or on
// a malformed field; Err tells which.
func (d *Decoder) Next() (tag uint16, t Type, payload []byte, ok bool) {
	if d.err != nil || len(d.buf) == 0 {
		return 0, 0, nil, false
	}
	if len(d.buf) < FieldHeaderSize {
		d.err = ErrTruncated
		return 0, 0, nil, false
	}
	tag = binary.LittleEndian.Uint16(d.buf)
	t = Type(d.buf[2])
	n := binary.LittleEndian.Uint32(d.buf[3:])
	if uint64(n) > uint64(len(d.buf)-FieldHeaderSize) {
		d.err = ErrTruncated
		return 0, 0, nil, false
	}
	payload = d.buf[FieldHeaderSize : FieldHeaderSize+int(n)]
	d.buf = d.buf[FieldHeaderSize+int(n):]
	if t == TypeU64 && n != 8 {
		d.err = ErrMalformed
		return 0, 0, nil, false
	}
	return tag, t, payload, true
}

// Err returns the first decoding error.
func (d *Decoder) Err() error { return d.err }

// Fail records err (the first one wins), ending the walk.
func (d *Decoder) Fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

// U64 reads an integer payload of a field of type t.
func (d *Decoder) U64(t Type, p []byte) uint64 {
	if t != TypeU64 {
		d.Fail(ErrWireType)
		return 0
	}
	return binary.LittleEndian.Uint64(p)
}

// U32 reads an integer payload that must fit 32 bits.
func (d *Decoder) U32(t Type, p []byte) uint32 {
	v := d.U64(t, p)
	if v > math.MaxUint32 {
		d.Fail(ErrMalformed)
		return 0
	}
	return uint32(v)
}

// U8 reads an integer payload that must fit 8 bits (enumerations).
func (d *Decoder) U8(t Type, p []byte) uint8 {
	v := d.U64(t, p)
	if v > math.MaxUint8 {
		d.Fail(ErrMalformed)
		return 0
	}
	return uint8(v)
}

// Blob returns a bytes payload (aliasing the input).
func (d *Decoder) Blob(t Type, p []byte) []byte {
	if t != TypeBytes {
		d.Fail(ErrWireType)
		return nil
	}
	return p
}

// String returns a bytes payload as a new string.
func (d *Decoder) String(t Type, p []byte) string { return string(d.Blob(t, p)) }

// Message returns a decoder over a nested message payload.
func (d *Decoder) Message(t Type, p []byte) Decoder {
	if t != TypeMessage {
		d.Fail(ErrWireType)
		return Decoder{}
	}
	return Decoder{buf: p}
}

// Map decodes a map payload into a new map (strings are copies).
func (d *Decoder) Map(t Type, p []byte) map[string]string {
	if t != TypeMap {
		d.Fail(ErrWireType)
		return nil
	}
	if len(p) < 4 {
		d.Fail(ErrTruncated)
		return nil
	}
	count := binary.LittleEndian.Uint32(p)
	p = p[4:]
	// Every entry takes at least 8 bytes: refuse counts the payload cannot
	// hold before allocating for them.
	if uint64(count)*8 > uint64(len(p)) {
		d.Fail(ErrTruncated)
		return nil
	}
	m := make(map[string]string, count)
	for i := uint32(0); i < count; i++ {
		k, rest, ok := lenPrefixed(p)
		if !ok {
			d.Fail(ErrTruncated)
			return nil
		}
		v, rest, ok := lenPrefixed(rest)
		if !ok {
			d.Fail(ErrTruncated)
			return nil
		}
		m[string(k)] = string(v)
		p = rest
	}
	if len(p) != 0 {
		d.Fail(ErrMalformed)
		return nil
	}
	return m
}

func lenPrefixed(p []byte) (v, rest []byte, ok bool) {
	if len(p) < 4 {
		return nil, nil, false
	}
	n := binary.LittleEndian.Uint32(p)
	if uint64(n) > uint64(len(p)-4) {
		return nil, nil, false
	}
	return p[4 : 4+n], p[4+n:], true
}
