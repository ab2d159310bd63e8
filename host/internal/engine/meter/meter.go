// Package meter rewrites a WebAssembly module so that it calls back into the
// host at bounded intervals: every function entry and every loop iteration
// spends one unit of fuel from a global of its own, and when the fuel runs
// out the module calls the imported function Module.Func, which returns the
// next allowance (and may stop the guest instead, by trapping or exiting).
//
// This is how wapr interrupts untrusted guests on engines whose own
// interruption is costly: wazero's WithCloseOnContextDone leaves the
// compiled code at every loop iteration to run a check in Go, which costs a
// Go guest (whose runtime loops constantly) several times its useful work.
// A metered module runs at full speed and leaves the compiled code once per
// allowance. Any execution that does not end must enter functions or
// iterate loops without end, so it reaches the host within one allowance.
//
// The rewrite understands the core instruction set with the sign-extension,
// saturating-conversion, bulk-memory, reference-types, multi-value,
// tail-call, SIMD (with relaxed SIMD), threads and exception-handling
// proposals. A module using anything else (the GC proposal, an unknown
// opcode) is refused with ErrUnsupported, so the caller can fall back to
// the engine's own interruption; nothing is ever rewritten half-way.
//
// What changes in the module: one function import appended after the
// existing function imports (so every defined function's index grows by
// one, and every reference to one is renumbered: calls, ref.func, exports,
// the start function, element segments, constant expressions and the name
// section), one function type if none matches, one mutable i32 global, and
// the metering code. DWARF sections, whose code offsets no longer hold, are
// dropped. Exports, memories, tables and data are untouched.
package meter

import (
	"errors"
	"fmt"
)

// The import a metered module calls when its fuel runs out: no parameters,
// one i32 result, the next allowance (a value <= 0 is taken as 1).
const (
	Module = "wapr_meter_v1"
	Func   = "refuel"
)

// Rewrite numbers the rewrite: a cache of rewritten modules keys them by it.
// Bump it whenever Instrument's output changes for any input.
const Rewrite = 1

// ErrUnsupported is wrapped by Instrument's error when the module uses an
// instruction or construct the rewrite does not understand.
var ErrUnsupported = errors.New("meter: module not supported")

// Section ids.
const (
	secCustom    = 0
	secType      = 1
	secImport    = 2
	secFunction  = 3
	secTable     = 4
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElement   = 9
	secCode      = 10
	secData      = 11
	secDataCount = 12
	secTag       = 13
)

// order is the position of each known section id in a module.
var order = map[byte]int{
	secType: 1, secImport: 2, secFunction: 3, secTable: 4, secMemory: 5, secTag: 6,
	secGlobal: 7, secExport: 8, secStart: 9, secElement: 10, secDataCount: 11, secCode: 12, secData: 13,
}

type section struct {
	id   byte
	body []byte
	name string // custom sections only
}

// Instrument returns a metered copy of wasm whose fuel global starts at
// initial. wasm is not modified.
func Instrument(wasm []byte, initial int32) ([]byte, error) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" || wasm[4] != 1 || wasm[5] != 0 || wasm[6] != 0 || wasm[7] != 0 {
		return nil, fmt.Errorf("%w: not a WebAssembly 1.0 binary module", ErrUnsupported)
	}
	secs, err := splitSections(wasm[8:])
	if err != nil {
		return nil, err
	}
	m := &rewriter{}
	if err := m.scan(secs); err != nil {
		return nil, err
	}
	out := append([]byte(nil), wasm[:8]...)
	emitted := map[byte]bool{}
	emit := func(id byte, body []byte) {
		out = append(out, id)
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
		emitted[id] = true
	}
	// insertMissing emits the sections we add to a module that lacks them,
	// at their place before a section of position pos.
	insertMissing := func(pos int) {
		if pos > order[secImport] && !emitted[secImport] && m.importSec == nil {
			emit(secImport, m.newImports(nil))
		}
		if pos > order[secGlobal] && !emitted[secGlobal] && m.globalSec == nil {
			emit(secGlobal, m.newGlobals(nil, initial))
		}
	}
	for _, s := range secs {
		if s.id != secCustom {
			insertMissing(order[s.id])
		}
		var body []byte
		switch s.id {
		case secCustom:
			if isDebugSection(s.name) {
				continue
			}
			body = s.body
			if s.name == "name" {
				if body, err = m.renameSection(s.body); err != nil {
					return nil, err
				}
			}
			out = append(out, secCustom)
			out = appendU32(out, uint32(len(body)))
			out = append(out, body...)
			continue
		case secType:
			body = m.newTypes(s.body)
		case secImport:
			body = m.newImports(s.body)
		case secGlobal:
			if body, err = m.newGlobalsRemapped(s.body, initial); err != nil {
				return nil, err
			}
		case secExport:
			if body, err = m.remapExports(s.body); err != nil {
				return nil, err
			}
		case secStart:
			r := reader{b: s.body}
			f := r.u32()
			if r.err != nil {
				return nil, r.fail("start section")
			}
			body = appendU32(nil, m.fn(f))
		case secElement:
			if body, err = m.remapElements(s.body); err != nil {
				return nil, err
			}
		case secData:
			if body, err = m.remapData(s.body); err != nil {
				return nil, err
			}
		case secCode:
			if body, err = m.meterCode(s.body); err != nil {
				return nil, err
			}
		default:
			body = s.body
		}
		emit(s.id, body)
	}
	insertMissing(len(order) + 1)
	if !emitted[secType] {
		// A module without types has no functions to meter; it still gets
		// the import, whose type must exist.
		return nil, fmt.Errorf("%w: module has no type section", ErrUnsupported)
	}
	return out, nil
}

func isDebugSection(name string) bool {
	return len(name) > 7 && name[:7] == ".debug_" || name == "sourceMappingURL" || name == "external_debug_info"
}

func splitSections(b []byte) ([]section, error) {
	var secs []section
	r := reader{b: b}
	last := 0
	for r.more() {
		id := r.byte()
		n := r.u32()
		body := r.bytes(int(n))
		if r.err != nil {
			return nil, r.fail("section header")
		}
		s := section{id: id, body: body}
		if id == secCustom {
			nr := reader{b: body}
			s.name = nr.name()
			if nr.err != nil {
				return nil, nr.fail("custom section name")
			}
		} else {
			pos, ok := order[id]
			if !ok {
				return nil, fmt.Errorf("%w: unknown section id %d", ErrUnsupported, id)
			}
			if pos <= last {
				return nil, fmt.Errorf("%w: section %d out of order", ErrUnsupported, id)
			}
			last = pos
		}
		secs = append(secs, s)
	}
	return secs, nil
}

// rewriter holds what the scan learned about the module.
type rewriter struct {
	importSec, globalSec []byte
	typeCount            uint32 // types before ours
	refuelType           uint32 // index of () -> i32
	addType              bool   // whether that type is appended
	funcImports          uint32 // imported functions: the refuel import's index
	globals              uint32 // imported + defined globals: the fuel global's index
}

// fn renumbers a function index for the metered module.
func (m *rewriter) fn(i uint32) uint32 {
	if i >= m.funcImports {
		return i + 1
	}
	return i
}

func (m *rewriter) scan(secs []section) error {
	m.addType = true
	for _, s := range secs {
		r := reader{b: s.body}
		switch s.id {
		case secType:
			n := r.u32()
			for i := uint32(0); i < n && r.err == nil; i++ {
				form := r.byte()
				if form != 0x60 {
					// GC proposal types (rec groups, structs, arrays).
					return fmt.Errorf("%w: type form 0x%x", ErrUnsupported, form)
				}
				params := r.valTypes()
				results := r.valTypes()
				if m.addType && len(params) == 0 && len(results) == 1 && results[0] == 0x7f {
					m.refuelType, m.addType = i, false
				}
			}
			m.typeCount = n
			if m.addType {
				m.refuelType = n
			}
		case secImport:
			m.importSec = s.body
			n := r.u32()
			for i := uint32(0); i < n && r.err == nil; i++ {
				mod := r.name()
				r.name()
				if mod == Module {
					return fmt.Errorf("%w: the module already imports from %s", ErrUnsupported, Module)
				}
				switch kind := r.byte(); kind {
				case 0x00:
					r.u32()
					m.funcImports++
				case 0x01:
					r.refType()
					r.limits()
				case 0x02:
					r.limits()
				case 0x03:
					r.valType()
					r.byte()
					m.globals++
				case 0x04:
					r.byte()
					r.u32()
				default:
					return fmt.Errorf("%w: import kind %d", ErrUnsupported, kind)
				}
			}
		case secGlobal:
			m.globalSec = s.body
			m.globals += r.u32()
			r.off = len(r.b) // the entries are walked when rewritten
		}
		if r.err != nil || s.id != secCustom && r.off != 0 && r.more() {
			return r.fail(fmt.Sprintf("section %d", s.id))
		}
	}
	return nil
}

// newTypes appends the refuel type when no existing type matches.
func (m *rewriter) newTypes(body []byte) []byte {
	if !m.addType {
		return body
	}
	r := reader{b: body}
	n := r.u32()
	out := appendU32(nil, n+1)
	out = append(out, body[r.off:]...)
	return append(out, 0x60, 0x00, 0x01, 0x7f)
}

// newImports appends the refuel import to an import section (nil: none).
func (m *rewriter) newImports(body []byte) []byte {
	var n uint32
	rest := []byte(nil)
	if body != nil {
		r := reader{b: body}
		n = r.u32()
		rest = body[r.off:]
	}
	out := appendU32(nil, n+1)
	out = append(out, rest...)
	out = appendName(out, Module)
	out = appendName(out, Func)
	out = append(out, 0x00)
	return appendU32(out, m.refuelType)
}

// newGlobals appends the fuel global to a global section (nil: none).
func (m *rewriter) newGlobals(body []byte, initial int32) []byte {
	var n uint32
	rest := []byte(nil)
	if body != nil {
		r := reader{b: body}
		n = r.u32()
		rest = body[r.off:]
	}
	out := appendU32(nil, n+1)
	out = append(out, rest...)
	out = append(out, 0x7f, 0x01, 0x41) // mutable i32 = i32.const initial
	out = appendS32(out, initial)
	return append(out, 0x0b)
}

// newGlobalsRemapped renumbers ref.func in the initialisers, then appends
// the fuel global.
func (m *rewriter) newGlobalsRemapped(body []byte, initial int32) ([]byte, error) {
	r := reader{b: body}
	n := r.u32()
	out := appendU32(nil, n)
	for i := uint32(0); i < n && r.err == nil; i++ {
		start := r.off
		r.valType()
		r.byte()
		out = append(out, body[start:r.off]...)
		var err error
		if out, err = m.constExpr(&r, out); err != nil {
			return nil, err
		}
	}
	if r.err != nil || r.more() {
		return nil, r.fail("global section")
	}
	return m.newGlobals(out, initial), nil
}

func (m *rewriter) remapExports(body []byte) ([]byte, error) {
	r := reader{b: body}
	n := r.u32()
	out := appendU32(nil, n)
	for i := uint32(0); i < n && r.err == nil; i++ {
		out = appendName(out, r.name())
		kind := r.byte()
		idx := r.u32()
		switch {
		case kind == 0x00:
			idx = m.fn(idx)
		case kind == 0x03 && idx >= m.globals:
			return nil, fmt.Errorf("%w: export of global %d, the module has %d", ErrUnsupported, idx, m.globals)
		}
		out = append(out, kind)
		out = appendU32(out, idx)
	}
	if r.err != nil || r.more() {
		return nil, r.fail("export section")
	}
	return out, nil
}

func (m *rewriter) remapElements(body []byte) ([]byte, error) {
	r := reader{b: body}
	n := r.u32()
	out := appendU32(nil, n)
	var err error
	for i := uint32(0); i < n && r.err == nil; i++ {
		flags := r.u32()
		out = appendU32(out, flags)
		if flags > 7 {
			return nil, fmt.Errorf("%w: element segment flags %d", ErrUnsupported, flags)
		}
		if flags&0x02 != 0 && flags&0x01 == 0 { // explicit table index (2, 6)
			out = appendU32(out, r.u32())
		}
		if flags&0x01 == 0 { // active: offset expression (0, 2, 4, 6)
			if out, err = m.constExpr(&r, out); err != nil {
				return nil, err
			}
		}
		exprs := flags&0x04 != 0
		if flags&0x03 != 0 { // element kind or reference type
			if exprs {
				start := r.off
				r.refType()
				out = append(out, body[start:r.off]...)
			} else {
				out = append(out, r.byte())
			}
		}
		count := r.u32()
		out = appendU32(out, count)
		for j := uint32(0); j < count && r.err == nil; j++ {
			if exprs {
				if out, err = m.constExpr(&r, out); err != nil {
					return nil, err
				}
			} else {
				out = appendU32(out, m.fn(r.u32()))
			}
		}
	}
	if r.err != nil || r.more() {
		return nil, r.fail("element section")
	}
	return out, nil
}

// remapData renumbers ref.func in active segments' offsets (it cannot
// appear there in valid modules, but the walk also validates the section).
func (m *rewriter) remapData(body []byte) ([]byte, error) {
	r := reader{b: body}
	n := r.u32()
	out := appendU32(nil, n)
	var err error
	for i := uint32(0); i < n && r.err == nil; i++ {
		flags := r.u32()
		out = appendU32(out, flags)
		switch flags {
		case 0:
			if out, err = m.constExpr(&r, out); err != nil {
				return nil, err
			}
		case 1:
		case 2:
			out = appendU32(out, r.u32())
			if out, err = m.constExpr(&r, out); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("%w: data segment flags %d", ErrUnsupported, flags)
		}
		size := r.u32()
		out = appendU32(out, size)
		out = append(out, r.bytes(int(size))...)
	}
	if r.err != nil || r.more() {
		return nil, r.fail("data section")
	}
	return out, nil
}

// constExpr copies a constant expression up to its end, renumbering
// ref.func.
func (m *rewriter) constExpr(r *reader, out []byte) ([]byte, error) {
	depth := 0
	for r.err == nil {
		start := r.off
		in, err := r.instr()
		if err != nil {
			return nil, err
		}
		if err := m.checkGlobal(in); err != nil {
			return nil, err
		}
		switch {
		case in.funcRef:
			out = append(out, r.b[start:in.immStart]...)
			out = appendU32(out, m.fn(in.imm))
		default:
			out = append(out, r.b[start:r.off]...)
		}
		switch in.op {
		case opBlock, opLoop, opIf, opTry, opTryTable:
			depth++
		case opEnd, opDelegate:
			if depth == 0 {
				return out, nil
			}
			depth--
		}
	}
	return nil, r.fail("constant expression")
}

// meterCode rewrites every function body.
func (m *rewriter) meterCode(body []byte) ([]byte, error) {
	r := reader{b: body}
	n := r.u32()
	out := appendU32(nil, n)
	var fb []byte
	for i := uint32(0); i < n && r.err == nil; i++ {
		size := r.u32()
		fr := reader{b: r.bytes(int(size))}
		if r.err != nil {
			return nil, r.fail("code section")
		}
		var err error
		if fb, err = m.meterFunc(&fr, fb[:0]); err != nil {
			return nil, fmt.Errorf("function %d: %w", m.funcImports+i, err)
		}
		out = appendU32(out, uint32(len(fb)))
		out = append(out, fb...)
	}
	if r.err != nil || r.more() {
		return nil, r.fail("code section")
	}
	return out, nil
}

func (m *rewriter) meterFunc(r *reader, out []byte) ([]byte, error) {
	groups := r.u32()
	for i := uint32(0); i < groups && r.err == nil; i++ {
		r.u32()
		r.valType()
	}
	if r.err != nil {
		return nil, r.fail("locals")
	}
	out = append(out, r.b[:r.off]...)
	calls, err := makesCalls(*r)
	if err != nil {
		return nil, err
	}
	if calls {
		out = m.appendMeter(out)
	}
	depth := 0
	for r.more() {
		start := r.off
		in, err := r.instr()
		if err != nil {
			return nil, err
		}
		if err := m.checkGlobal(in); err != nil {
			return nil, err
		}
		if in.funcRef {
			out = append(out, r.b[start:in.immStart]...)
			out = appendU32(out, m.fn(in.imm))
		} else {
			out = append(out, r.b[start:r.off]...)
		}
		switch in.op {
		case opLoop:
			depth++
			out = m.appendMeter(out)
		case opBlock, opIf, opTry, opTryTable:
			depth++
		case opEnd, opDelegate:
			depth--
		}
	}
	if depth != -1 {
		return nil, fmt.Errorf("%w: unbalanced function body", ErrUnsupported)
	}
	return out, nil
}

// checkGlobal refuses an access to a global the module does not have. The
// fuel global takes the first free index, so such an access, invalid in
// the original, would become valid in the rewrite and let the guest refill
// its own fuel; refused, the module goes to the engine's own interruption,
// whose validation rejects it.
func (m *rewriter) checkGlobal(in instr) error {
	if in.global && in.imm >= m.globals {
		return fmt.Errorf("%w: global %d accessed, the module has %d", ErrUnsupported, in.imm, m.globals)
	}
	return nil
}

// makesCalls reports whether the rest of a function body calls a function.
// Only such functions are metered on entry: a function that calls nothing
// does bounded work between its loops' iterations (which are metered), so
// an execution that never ends enters calling functions without end.
func makesCalls(r reader) (bool, error) {
	for r.more() {
		in, err := r.instr()
		if err != nil {
			return false, err
		}
		switch in.op {
		case opCall, opCallIndirect, opRetCall, opRetCallIndirect, opCallRef, opRetCallRef:
			return true, nil
		}
	}
	return false, nil
}

// appendMeter appends the metering sequence, which leaves the operand
// stack as it found it:
//
//	global.get $fuel  i32.const 1  i32.sub  global.set $fuel
//	global.get $fuel  i32.eqz
//	if  call $refuel  global.set $fuel  end
func (m *rewriter) appendMeter(out []byte) []byte {
	g := m.globals
	out = append(out, 0x23)
	out = appendU32(out, g)
	out = append(out, 0x41, 0x01, 0x6b, 0x24)
	out = appendU32(out, g)
	out = append(out, 0x23)
	out = appendU32(out, g)
	out = append(out, 0x45, 0x04, 0x40, 0x10)
	out = appendU32(out, m.funcImports)
	out = append(out, 0x24)
	out = appendU32(out, g)
	return append(out, 0x0b)
}

// renameSection renumbers function indices in the name section's function
// (1), local (2) and label (3) name maps, and keeps the rest as it is.
func (m *rewriter) renameSection(body []byte) ([]byte, error) {
	r := reader{b: body}
	out := appendName(nil, r.name())
	for r.more() && r.err == nil {
		id := r.byte()
		size := r.u32()
		sub := r.bytes(int(size))
		if r.err != nil {
			break
		}
		if id < 1 || id > 3 {
			out = append(out, id)
			out = appendU32(out, size)
			out = append(out, sub...)
			continue
		}
		sr := reader{b: sub}
		n := sr.u32()
		nb := appendU32(nil, n)
		for i := uint32(0); i < n && sr.err == nil; i++ {
			nb = appendU32(nb, m.fn(sr.u32()))
			if id == 1 {
				nb = appendName(nb, sr.name())
				continue
			}
			k := sr.u32()
			nb = appendU32(nb, k)
			for j := uint32(0); j < k && sr.err == nil; j++ {
				nb = appendU32(nb, sr.u32())
				nb = appendName(nb, sr.name())
			}
		}
		if sr.err != nil || sr.more() {
			// A malformed name section only loses names: drop it.
			return appendName(nil, "name"), nil
		}
		out = append(out, id)
		out = appendU32(out, uint32(len(nb)))
		out = append(out, nb...)
	}
	if r.err != nil {
		return appendName(nil, "name"), nil
	}
	return out, nil
}
