package abi

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The tests in this file hold the field tables of SPEC.md §6 against the
// encoder: every tag a table lists is written with the wire type the table
// gives and no other tag is, and an encoder given a zero value writes
// exactly the fields whose presence is "always".

// specField is one row of a message's field table.
type specField struct {
	tag      uint16
	name     string
	wire     Type
	nested   string // for wire type 3: the nested message's name
	presence string
}

// always reports whether an encoder must write the field even when it is
// zero. ItemError.index is "since v1.1: always": the encoders of this
// package write it when HasIndex is set, which every v1.1 encoder does.
func (f specField) always() bool {
	return f.presence == "always" || strings.HasSuffix(f.presence, ": always")
}

// fieldTables returns, for every message with a field table in spec (a
// line naming **`Message`** followed by a table whose header starts with
// "tag"), its rows.
func fieldTables(t *testing.T, spec string) map[string][]specField {
	t.Helper()
	out := map[string][]specField{}
	lines := strings.Split(spec, "\n")
	for i := 0; i < len(lines); i++ {
		start := strings.Index(lines[i], "**`")
		if start < 0 || strings.HasPrefix(strings.TrimSpace(lines[i]), "|") {
			continue
		}
		rest := lines[i][start+3:]
		end := strings.Index(rest, "`**")
		if end < 0 {
			continue
		}
		name := rest[:end]
		// The table follows after at most a blank line.
		j := i + 1
		for j < len(lines) && strings.TrimSpace(lines[j]) == "" {
			j++
		}
		if j >= len(lines) || !strings.HasPrefix(strings.TrimSpace(lines[j]), "| tag |") {
			continue
		}
		var rows []specField
		k := j + 2 // past the header and its separator
		for ; k < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[k]), "|"); k++ {
			cells := tableRows(lines[k])[0]
			if len(cells) < 4 {
				t.Errorf("SPEC.md: a row of %s's table has %d cells: %s", name, len(cells), lines[k])
				continue
			}
			tag, err := strconv.ParseUint(cells[0], 10, 16)
			if err != nil {
				t.Errorf("SPEC.md: a row of %s's table has no tag: %s", name, lines[k])
				continue
			}
			f := specField{tag: uint16(tag), name: cells[1], presence: cells[3]}
			switch typ := cells[2]; {
			case strings.HasPrefix(typ, "u64"):
				f.wire = TypeU64
			case typ == "bytes":
				f.wire = TypeBytes
			case strings.HasPrefix(typ, "msg:"):
				f.wire, f.nested = TypeMessage, strings.TrimPrefix(typ, "msg:")
			case typ == "map":
				f.wire = TypeMap
			default:
				t.Errorf("SPEC.md: %s field %s has type %q, which is no wire type", name, f.name, typ)
			}
			rows = append(rows, f)
		}
		i = k
		out[name] = rows
	}
	return out
}

// reporter is the part of *testing.T checkFields uses.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
}

// specMessages are the messages of package abi, by name.
var specMessages = map[string]reflect.Type{}

func init() {
	for _, m := range []any{
		Descriptor{}, InitRequest{}, ErrorRecord{},
		StateGetRequest{}, StateGetResponse{}, StateSetRequest{}, StateDeleteRequest{},
		StateBulkGetRequest{}, StateBulkGetItem{}, StateBulkGetResponse{}, StateBulkSetRequest{},
		StateBulkDeleteRequest{}, ItemError{}, BulkResult{}, StateTransactRequest{},
		PublishRequest{}, BulkPublishRequest{}, SubscribeRequest{}, PollRequest{}, Message{}, PollResponse{}, AckRequest{},
		InvokeRequest{}, InvokeResponse{}, ReadRequest{}, Event{}, ReadResponse{}, ReadAckRequest{},
		HTTPRequest{}, HTTPResponse{},
	} {
		typ := reflect.TypeOf(m)
		specMessages[typ.Name()] = typ
	}
}

// fill sets every field of v, recursively, to a non-zero value; a slice
// gets one element.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Int, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		m.SetMapIndex(reflect.ValueOf("k"), reflect.ValueOf("v"))
		v.Set(m)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			v.SetBytes([]byte("x"))
			return
		}
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0))
		v.Set(s)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem())
		v.Set(p)
	}
}

// zeroWithElements returns a zero value of typ whose repeated-message
// fields hold one zero element each, so nested tables are checked too.
func zeroWithElements(typ reflect.Type) reflect.Value {
	v := reflect.New(typ).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Struct {
			s := reflect.MakeSlice(f.Type(), 1, 1)
			if e := s.Index(0); e.Type() == reflect.TypeOf(ItemError{}) {
				e.FieldByName("HasIndex").SetBool(true) // a v1.1 encoder
			}
			f.Set(s)
		}
	}
	return v
}

// encodeValue encodes v, a message of this package.
func encodeValue(t *testing.T, v reflect.Value) []byte {
	t.Helper()
	p := reflect.New(v.Type())
	p.Elem().Set(v)
	m, ok := p.Interface().(interface{ Encode(*Encoder) })
	if !ok {
		t.Fatalf("%s has no Encode method", v.Type().Name())
	}
	var e Encoder
	m.Encode(&e)
	return e.Bytes()
}

// checkFields compares the fields of msg, a message named name, with the
// table of name. zero says msg encodes a zero value: then exactly the
// "always" fields (and repeated messages) must be present.
func checkFields(t reporter, tables map[string][]specField, name string, msg []byte, zero bool) {
	t.Helper()
	rows, ok := tables[name]
	if !ok {
		t.Errorf("SPEC.md has no field table for %s", name)
		return
	}
	byTag := map[uint16]specField{}
	for _, f := range rows {
		byTag[f.tag] = f
	}
	seen := map[uint16]bool{}
	d := NewDecoder(msg)
	for {
		tag, wire, payload, ok := d.Next()
		if !ok {
			break
		}
		f, known := byTag[tag]
		switch {
		case !known:
			t.Errorf("%s: the encoder writes tag %d, which SPEC.md's table does not list", name, tag)
			continue
		case f.wire != wire:
			t.Errorf("%s.%s (tag %d): the encoder writes wire type %d, SPEC.md says %d", name, f.name, tag, wire, f.wire)
		case wire == TypeMessage && !seen[tag]:
			checkFields(t, tables, f.nested, payload, zero)
		}
		seen[tag] = true
	}
	if err := d.Err(); err != nil {
		t.Errorf("%s: %v", name, err)
	}
	for _, f := range rows {
		want := !zero || f.always() || f.wire == TypeMessage
		if seen[f.tag] != want {
			t.Errorf("%s.%s (tag %d, %s): written = %v for a %s value, want %v", name, f.name, f.tag, f.presence, seen[f.tag], map[bool]string{true: "zero", false: "filled"}[zero], want)
		}
	}
}

// TestSpecFieldTables: every message table of §6 matches what the encoder
// writes, filled and zero.
func TestSpecFieldTables(t *testing.T) {
	tables := fieldTables(t, readSpec(t))
	if len(tables) < 25 {
		t.Fatalf("found only %d field tables in SPEC.md", len(tables))
	}
	for name := range tables {
		if _, ok := specMessages[name]; !ok {
			t.Errorf("SPEC.md has a field table for %s, which specMessages does not list", name)
		}
	}
	for name, typ := range specMessages {
		if _, hasEncode := reflect.PointerTo(typ).MethodByName("Encode"); !hasEncode {
			continue // nested only: checked through its parent
		}
		t.Run(name, func(t *testing.T) {
			full := reflect.New(typ).Elem()
			fill(full)
			zero := zeroWithElements(typ)
			if typ == reflect.TypeOf(StateTransactRequest{}) {
				// Exactly one of Set and Delete per operation.
				set, del := new(StateSetRequest), new(StateDeleteRequest)
				fill(reflect.ValueOf(set).Elem())
				fill(reflect.ValueOf(del).Elem())
				full.FieldByName("Operations").Set(reflect.ValueOf([]StateOperation{{Set: set}, {Delete: del}}))
				zero.FieldByName("Operations").Set(reflect.ValueOf([]StateOperation{{Set: new(StateSetRequest)}, {Delete: new(StateDeleteRequest)}}))
			}
			checkFields(t, tables, name, encodeValue(t, full), false)
			checkFields(t, tables, name, encodeValue(t, zero), true)
		})
	}
}

// TestSpecFieldTablesCatch proves checkFields fires on a table that
// disagrees with the encoder.
func TestSpecFieldTablesCatch(t *testing.T) {
	tables := map[string][]specField{
		"ErrorRecord": {{tag: 1, name: "message", wire: TypeBytes, presence: "optional"}},
	}
	var e Encoder
	(&ErrorRecord{}).Encode(&e)
	var rec collected
	checkFields(&rec, tables, "ErrorRecord", e.Bytes(), true)
	if !slices.ContainsFunc(rec, func(m string) bool { return strings.Contains(m, "message (tag 1, optional): written = true") }) {
		t.Errorf("an always-written field listed as optional was not reported: %q", rec)
	}
}

// collected records the failures checkFields reports.
type collected []string

func (c *collected) Helper() {}
func (c *collected) Errorf(format string, args ...any) {
	*c = append(*c, fmt.Sprintf(format, args...))
}
