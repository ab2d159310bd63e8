package httpapi

import (
	"encoding/json"
	"unicode/utf8"
)

// decodeStateItems decodes a save request body, a JSON array of state
// items, exactly as json.Unmarshal into []stateItem does (same items, same
// errors). The common body, items with only a plain "key" and a "value",
// takes a fast path that skips encoding/json's reflection; anything else
// (other fields, escapes in a key, duplicate fields, any syntax error) is
// left to json.Unmarshal. The items own their bytes.
func decodeStateItems(body []byte) ([]stateItem, error) {
	if items, ok := decodeSimpleItems(body); ok {
		return items, nil
	}
	var items []stateItem
	err := json.Unmarshal(body, &items)
	return items, err
}

// decodeSimpleItems is the fast path of decodeStateItems. ok is false when
// the body is anything but an array of objects whose members are "key" (a
// string without escapes, valid UTF-8) and "value" (any valid JSON), each at
// most once, with nothing after the array but white space.
func decodeSimpleItems(b []byte) (items []stateItem, ok bool) {
	p := &itemScanner{b: b}
	if !p.consume('[') {
		return nil, false
	}
	items = []stateItem{} // json.Unmarshal gives an empty, non-nil slice for []
	if p.consume(']') {
		return items, p.end()
	}
	for {
		it, ok := p.item()
		if !ok {
			return nil, false
		}
		items = append(items, it)
		if p.consume(',') {
			continue
		}
		if p.consume(']') {
			return items, p.end()
		}
		return nil, false
	}
}

type itemScanner struct {
	b []byte
	i int
}

func (p *itemScanner) skipSpace() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// consume skips white space and then c, reporting whether c was there.
func (p *itemScanner) consume(c byte) bool {
	p.skipSpace()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// end reports whether only white space is left.
func (p *itemScanner) end() bool {
	p.skipSpace()
	return p.i == len(p.b)
}

// plainString reads a string with no escapes and no control characters,
// and returns its contents (aliasing b).
func (p *itemScanner) plainString() ([]byte, bool) {
	if !p.consume('"') {
		return nil, false
	}
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			return s, true
		case c == '\\' || c < 0x20:
			return nil, false
		}
		p.i++
	}
	return nil, false
}

// item reads one {"key": …, "value": …} object.
func (p *itemScanner) item() (stateItem, bool) {
	var it stateItem
	if !p.consume('{') {
		return it, false
	}
	var haveKey, haveValue bool
	for {
		name, ok := p.plainString()
		if !ok || !p.consume(':') {
			return it, false
		}
		switch string(name) {
		case "key":
			s, ok := p.plainString()
			if !ok || haveKey || !utf8.Valid(s) {
				return it, false
			}
			it.Key, haveKey = string(s), true
		case "value":
			v, ok := p.value()
			if !ok || haveValue {
				return it, false
			}
			// json.RawMessage copies what it is given; so does this.
			it.Value, haveValue = append(json.RawMessage(nil), v...), true
		default:
			return it, false
		}
		if p.consume(',') {
			continue
		}
		return it, p.consume('}')
	}
}

// value returns the bytes of the JSON value at the scanner (aliasing b),
// checked with json.Valid.
func (p *itemScanner) value() ([]byte, bool) {
	p.skipSpace()
	start := p.i
	if p.i >= len(p.b) {
		return nil, false
	}
	switch p.b[p.i] {
	case '"':
		if !p.skipString() {
			return nil, false
		}
	case '{', '[':
		depth := 0
		for p.i < len(p.b) {
			switch p.b[p.i] {
			case '"':
				if !p.skipString() {
					return nil, false
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			p.i++
			if depth == 0 {
				break
			}
		}
		if depth != 0 {
			return nil, false
		}
	default:
		// A number or a literal: up to the next delimiter.
		for p.i < len(p.b) {
			c := p.b[p.i]
			if c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r' {
				break
			}
			p.i++
		}
	}
	v := p.b[start:p.i]
	return v, json.Valid(v)
}

// skipString moves past the string at the scanner, escapes included.
func (p *itemScanner) skipString() bool {
	p.i++ // the opening quote
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case '\\':
			p.i += 2
			continue
		case '"':
			p.i++
			return true
		}
		p.i++
	}
	return false
}
