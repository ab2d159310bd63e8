package meter

import "fmt"

// reader decodes the binary format. The first error sticks: later reads
// return zero values, and the caller checks err once.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail(what string) error {
	if r.err != nil {
		return fmt.Errorf("%w: %s: %v", ErrUnsupported, what, r.err)
	}
	return fmt.Errorf("%w: %s: trailing or malformed bytes at offset %d", ErrUnsupported, what, r.off)
}

func (r *reader) more() bool { return r.err == nil && r.off < len(r.b) }

func (r *reader) setErr(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.setErr(fmt.Errorf("unexpected end at offset %d", r.off))
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.setErr(fmt.Errorf("length %d past the end at offset %d", n, r.off))
		return nil
	}
	b := r.b[r.off : r.off+n]
	r.off += n
	return b
}

// uleb reads an unsigned LEB128 of at most bits bits.
func (r *reader) uleb(bits uint) uint64 {
	var v uint64
	for shift := uint(0); ; shift += 7 {
		if shift >= bits+7 {
			r.setErr(fmt.Errorf("LEB128 too long at offset %d", r.off))
			return 0
		}
		c := r.byte()
		if r.err != nil {
			return 0
		}
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			return v
		}
	}
}

// sleb reads a signed LEB128 of at most bits bits.
func (r *reader) sleb(bits uint) int64 {
	var v int64
	var shift uint
	for {
		if shift >= bits+7 {
			r.setErr(fmt.Errorf("LEB128 too long at offset %d", r.off))
			return 0
		}
		c := r.byte()
		if r.err != nil {
			return 0
		}
		v |= int64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				v |= -1 << shift
			}
			return v
		}
	}
}

func (r *reader) u32() uint32 { return uint32(r.uleb(32)) }

func (r *reader) name() string { return string(r.bytes(int(r.u32()))) }

// heapType reads a heap type (an s33: an abstract type code or a type index).
func (r *reader) heapType() { r.sleb(33) }

// valType reads a value type, returning its first byte.
func (r *reader) valType() byte {
	c := r.byte()
	switch c {
	case 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f, 0x69:
	case 0x63, 0x64: // (ref null? ht)
		r.heapType()
	default:
		if r.err == nil {
			r.setErr(fmt.Errorf("value type 0x%x", c))
		}
	}
	return c
}

func (r *reader) valTypes() []byte {
	n := r.u32()
	if n > uint32(len(r.b)) {
		r.setErr(fmt.Errorf("%d value types", n))
		return nil
	}
	out := make([]byte, 0, n)
	for i := uint32(0); i < n && r.err == nil; i++ {
		out = append(out, r.valType())
	}
	return out
}

func (r *reader) refType() { r.valType() }

func (r *reader) limits() {
	flags := r.byte()
	if flags > 0x07 {
		r.setErr(fmt.Errorf("limits flags 0x%x", flags))
		return
	}
	bits := uint(32)
	if flags&0x04 != 0 { // memory64
		bits = 64
	}
	r.uleb(bits)
	if flags&0x01 != 0 {
		r.uleb(bits)
	}
}

// blockType reads a block type: empty, one value type, or a type index.
func (r *reader) blockType() {
	if r.err != nil || r.off >= len(r.b) {
		r.byte()
		return
	}
	switch c := r.b[r.off]; {
	case c == 0x40:
		r.off++
	case c >= 0x40 && c <= 0x7f: // a negative one-byte s33: a value type
		r.valType()
	default:
		if idx := r.sleb(33); idx < 0 && r.err == nil {
			r.setErr(fmt.Errorf("block type %d", idx))
		}
	}
}

func (r *reader) memArg() {
	align := r.u32()
	if align&0x40 != 0 { // multi-memory: a memory index follows
		r.u32()
	}
	r.uleb(64)
}

// Opcodes the rewrite acts on.
const (
	opBlock           = 0x02
	opLoop            = 0x03
	opIf              = 0x04
	opTry             = 0x06
	opEnd             = 0x0b
	opCall            = 0x10
	opCallIndirect    = 0x11
	opRetCall         = 0x12
	opRetCallIndirect = 0x13
	opCallRef         = 0x14
	opRetCallRef      = 0x15
	opRefFunc         = 0xd2
	opTryTable        = 0x1f
	opDelegate        = 0x18 // ends a try block, like end
)

// instr describes one decoded instruction.
type instr struct {
	op byte
	// funcRef is set for instructions whose immediate imm is a function
	// index (call, return_call, ref.func), encoded at immStart.
	funcRef  bool
	imm      uint32
	immStart int
	// global is set for global.get and global.set, whose index is imm.
	global bool
}

// instr decodes the instruction at the reader's offset and moves past it.
func (r *reader) instr() (instr, error) {
	op := r.byte()
	in := instr{op: op}
	switch {
	case op == 0x00 || op == 0x01 || op == 0x05 || op == 0x0a || op == 0x0b || op == 0x0f ||
		op == 0x19 || op == 0x1a || op == 0x1b:
		// unreachable nop else throw_ref end return catch_all drop select
	case op == opBlock || op == opLoop || op == opIf || op == opTry:
		r.blockType()
	case op == 0x07 || op == 0x08 || op == 0x09 || op == 0x0c || op == 0x0d || op == 0x18 || op == 0x14 || op == 0x15:
		// catch throw (tag) rethrow br br_if delegate (label) call_ref return_call_ref (type)
		r.u32()
	case op == 0x0e: // br_table
		n := r.u32()
		for i := uint32(0); i <= n && r.err == nil; i++ {
			r.u32()
		}
	case op == opCall || op == opRetCall || op == opRefFunc:
		in.funcRef = true
		in.immStart = r.off
		in.imm = r.u32()
	case op == 0x11 || op == 0x13: // call_indirect return_call_indirect
		r.u32()
		r.u32()
	case op == 0x1c: // select t*
		r.valTypes()
	case op == opTryTable:
		r.blockType()
		n := r.u32()
		for i := uint32(0); i < n && r.err == nil; i++ {
			switch kind := r.byte(); kind {
			case 0x00, 0x01: // catch, catch_ref: tag and label
				r.u32()
				r.u32()
			case 0x02, 0x03: // catch_all, catch_all_ref: label
				r.u32()
			default:
				return in, fmt.Errorf("%w: try_table catch kind %d", ErrUnsupported, kind)
			}
		}
	case op == 0x23 || op == 0x24: // global.get global.set
		in.global = true
		in.imm = r.u32()
	case op >= 0x20 && op <= 0x26: // locals, table.get/set
		r.u32()
	case op >= 0x28 && op <= 0x3e: // loads and stores
		r.memArg()
	case op == 0x3f || op == 0x40: // memory.size memory.grow
		r.u32()
	case op == 0x41:
		r.sleb(32)
	case op == 0x42:
		r.sleb(64)
	case op == 0x43:
		r.bytes(4)
	case op == 0x44:
		r.bytes(8)
	case op >= 0x45 && op <= 0xc4: // numeric, sign extension
	case op == 0xd0: // ref.null
		r.heapType()
	case op == 0xd1 || op == 0xd3 || op == 0xd5: // ref.is_null ref.as_non_null ref.eq
	case op == 0xd4 || op == 0xd6: // br_on_null br_on_non_null
		r.u32()
	case op == 0xfc:
		if err := r.miscOp(); err != nil {
			return in, err
		}
	case op == 0xfd:
		if err := r.simdOp(); err != nil {
			return in, err
		}
	case op == 0xfe:
		if err := r.atomicOp(); err != nil {
			return in, err
		}
	default:
		if r.err != nil {
			return in, r.fail("instruction")
		}
		return in, fmt.Errorf("%w: opcode 0x%x at offset %d", ErrUnsupported, op, r.off-1)
	}
	if r.err != nil {
		return in, r.fail(fmt.Sprintf("instruction 0x%x", op))
	}
	return in, nil
}

// miscOp decodes the 0xfc prefix: saturating truncation, bulk memory and
// table instructions.
func (r *reader) miscOp() error {
	switch sub := r.u32(); {
	case sub <= 7: // trunc_sat
	case sub == 8: // memory.init data mem
		r.u32()
		r.u32()
	case sub == 9 || sub == 11 || sub == 13 || sub == 15 || sub == 16 || sub == 17:
		// data.drop memory.fill elem.drop table.grow table.size table.fill
		r.u32()
	case sub == 10 || sub == 12 || sub == 14: // memory.copy table.init table.copy
		r.u32()
		r.u32()
	default:
		if r.err == nil {
			return fmt.Errorf("%w: opcode 0xfc %d", ErrUnsupported, sub)
		}
	}
	return nil
}

// simdOp decodes the 0xfd prefix (SIMD and relaxed SIMD).
func (r *reader) simdOp() error {
	switch sub := r.u32(); {
	case sub <= 0x0b || sub == 0x5c || sub == 0x5d: // loads, store, load_zero
		r.memArg()
	case sub == 0x0c || sub == 0x0d: // v128.const, i8x16.shuffle
		r.bytes(16)
	case sub >= 0x15 && sub <= 0x22: // extract_lane, replace_lane
		r.byte()
	case sub >= 0x54 && sub <= 0x5b: // load_lane, store_lane
		r.memArg()
		r.byte()
	case sub <= 0xff || sub >= 0x100 && sub <= 0x114: // no immediate; relaxed SIMD
	default:
		if r.err == nil {
			return fmt.Errorf("%w: opcode 0xfd %d", ErrUnsupported, sub)
		}
	}
	return nil
}

// atomicOp decodes the 0xfe prefix (threads).
func (r *reader) atomicOp() error {
	switch sub := r.u32(); {
	case sub == 0x03: // atomic.fence
		r.byte()
	case sub <= 0x02 || sub >= 0x10 && sub <= 0x4e:
		r.memArg()
	default:
		if r.err == nil {
			return fmt.Errorf("%w: opcode 0xfe %d", ErrUnsupported, sub)
		}
	}
	return nil
}

func appendU32(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func appendS32(b []byte, v int32) []byte {
	x := int64(v)
	for {
		c := byte(x & 0x7f)
		x >>= 7
		if x == 0 && c&0x40 == 0 || x == -1 && c&0x40 != 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func appendName(b []byte, s string) []byte {
	b = appendU32(b, uint32(len(s)))
	return append(b, s...)
}
