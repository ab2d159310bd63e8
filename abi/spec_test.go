package abi

import (
	"go/ast"
	"go/constant"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The tests in this file fail when SPEC.md drifts from the code: every
// golden vector must be listed byte for byte, and every name and number of
// abi.go (exports, import modules, host functions, status codes, operation
// numbers, host error codes, log levels, dial flags) must appear in it.

func readSpec(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("SPEC.md")
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(b), "\r\n", "\n")
}

func stripSpace(s string) string {
	return strings.ToLower(strings.Join(strings.Fields(s), ""))
}

// vectorRef matches a vector named in a heading: `state_get.hex`.
var vectorRef = regexp.MustCompile("`([a-z0-9_]+)\\.hex`")

// hexBlocksByVector returns, for each vector named in a heading of spec,
// the ```hex fenced blocks of that heading's section (up to the next
// heading). Other fenced blocks are skipped whole, so a '#' inside them is
// not taken for a heading.
func hexBlocksByVector(spec string) map[string][]string {
	out := map[string][]string{}
	var names []string // vectors named by the current heading
	inFence, isHex := false, false
	var block strings.Builder
	for _, line := range strings.Split(spec, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case inFence && strings.HasPrefix(trimmed, "```"):
			if isHex {
				for _, n := range names {
					out[n] = append(out[n], block.String())
				}
			}
			inFence = false
		case inFence:
			block.WriteString(line)
			block.WriteByte('\n')
		case strings.HasPrefix(trimmed, "```"):
			inFence, isHex = true, strings.TrimSpace(strings.TrimPrefix(trimmed, "```")) == "hex"
			block.Reset()
		case strings.HasPrefix(trimmed, "#"):
			names = names[:0]
			for _, m := range vectorRef.FindAllStringSubmatch(trimmed, -1) {
				names = append(names, m[1])
				if _, ok := out[m[1]]; !ok {
					out[m[1]] = nil
				}
			}
		}
	}
	return out
}

func TestSpecGoldenVectors(t *testing.T) {
	spec := readSpec(t)
	files, err := filepath.Glob(filepath.Join("testdata", "*.hex"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no golden vectors in testdata")
	}
	blocks := hexBlocksByVector(spec)
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".hex")
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		want := stripSpace(string(raw))
		bs, named := blocks[name]
		if !named {
			t.Errorf("SPEC.md has no heading naming `%s.hex`", name)
			continue
		}
		found := false
		for _, b := range bs {
			if stripSpace(b) == want {
				found = true
			} else {
				t.Errorf("SPEC.md: a hex block under the heading of `%s.hex` differs from testdata/%s.hex:\n%s", name, name, b)
			}
		}
		if !found {
			t.Errorf("SPEC.md: no ```hex block under a heading naming `%s.hex` holds the bytes of testdata/%s.hex", name, name)
		}
	}
	for name := range blocks {
		if _, err := os.Stat(filepath.Join("testdata", name+".hex")); err != nil {
			t.Errorf("SPEC.md names `%s.hex`, which is not in testdata", name)
		}
	}
}

// tableRows returns the cells of every Markdown table row of spec.
func tableRows(spec string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(spec, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			continue
		}
		var cells []string
		for _, c := range strings.Split(strings.Trim(line, "|"), "|") {
			cells = append(cells, strings.TrimSpace(c))
		}
		rows = append(rows, cells)
	}
	return rows
}

// hasRow reports whether some table row has a cell equal to number (bare or
// in backticks) and cells mentioning every name in backticks.
func hasRow(rows [][]string, number string, names ...string) bool {
	for _, r := range rows {
		if !slices.Contains(r, number) && !slices.Contains(r, "`"+number+"`") {
			continue
		}
		all := true
		for _, n := range names {
			if !slices.ContainsFunc(r, func(c string) bool { return strings.Contains(c, "`"+n+"`") }) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// abiConstants type-checks abi.go alone and returns its exported constants.
func abiConstants(t *testing.T) []*types.Const {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "abi.go", nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	conf := types.Config{Importer: importer.ForCompiler(fset, "source", nil)}
	pkg, err := conf.Check("abi", fset, []*ast.File{f}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []*types.Const
	for _, name := range pkg.Scope().Names() {
		if c, ok := pkg.Scope().Lookup(name).(*types.Const); ok && c.Exported() {
			out = append(out, c)
		}
	}
	return out
}

func TestSpecNames(t *testing.T) {
	spec := readSpec(t)
	rows := tableRows(spec)
	consts := abiConstants(t)
	if len(consts) < 40 {
		t.Fatalf("found only %d exported constants in abi.go", len(consts))
	}
	for _, c := range consts {
		name := c.Name()
		val := c.Val()
		switch {
		case name == "VersionMajor":
			v, _ := constant.Int64Val(val)
			if want := "`wapr_abi_v" + strconv.FormatInt(v, 10) + "`"; !strings.Contains(spec, want) {
				t.Errorf("SPEC.md does not name the marker %s", want)
			}
		case name == "VersionMinor":
			v, _ := constant.Int64Val(val)
			if want := "This document is minor **" + strconv.FormatInt(v, 10) + "**"; !strings.Contains(spec, want) {
				t.Errorf("SPEC.md does not say %q", want)
			}
		case strings.HasPrefix(name, "Feature"):
			if s := constant.StringVal(val); !strings.Contains(spec, "`"+s+"`") {
				t.Errorf("SPEC.md does not mention the feature %s (`%s`)", name, s)
			}
		case strings.HasPrefix(name, "Export"), strings.HasPrefix(name, "Module"), strings.HasPrefix(name, "Func"):
			if val.Kind() != constant.String {
				t.Errorf("%s is not a string constant", name)
				continue
			}
			if s := constant.StringVal(val); !strings.Contains(spec, "`"+s+"`") {
				t.Errorf("SPEC.md does not mention %s (`%s`)", name, s)
			}
		case c.Type().String() == "abi.Status":
			v, _ := constant.Uint64Val(val)
			n := strconv.FormatUint(v, 10)
			if !hasRow(rows, n, Status(v).String(), name) {
				t.Errorf("SPEC.md has no table row with status %s, `%s` and `%s`", n, Status(v).String(), name)
			}
		case strings.HasPrefix(name, "State"), strings.HasPrefix(name, "PubSub"), strings.HasPrefix(name, "Binding"),
			strings.HasPrefix(name, "Err"), strings.HasPrefix(name, "Log"), strings.HasPrefix(name, "Sock"):
			v, ok := constant.Int64Val(val)
			if !ok {
				t.Errorf("%s is not an integer constant", name)
				continue
			}
			n := strconv.FormatInt(v, 10)
			if !hasRow(rows, n, name) {
				t.Errorf("SPEC.md has no table row with %s and `%s`", n, name)
			}
		default:
			t.Errorf("abi.go exports constant %s, which spec_test.go does not check: extend SPEC.md and this test", name)
		}
	}
}

// TestSpecMessagesAndWireTypes: every message type and wire type of the
// codec is described.
func TestSpecMessagesAndWireTypes(t *testing.T) {
	spec := readSpec(t)
	rows := tableRows(spec)
	fset := token.NewFileSet()
	for _, file := range []string{"messages.go", "messages_pubsub.go", "codec.go"} {
		f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok {
				continue
			}
			for _, s := range gd.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					if _, isStruct := s.Type.(*ast.StructType); !isStruct || !s.Name.IsExported() {
						continue
					}
					if s.Name.Name == "Encoder" || s.Name.Name == "Decoder" || s.Name.Name == "StateOperation" {
						continue
					}
					if !strings.Contains(spec, "**`"+s.Name.Name+"`**") {
						t.Errorf("SPEC.md has no field table for message %s (a line with **`%s`**)", s.Name.Name, s.Name.Name)
					}
				case *ast.ValueSpec:
					for i, n := range s.Names {
						if !strings.HasPrefix(n.Name, "Type") || i >= len(s.Values) {
							continue
						}
						lit, ok := s.Values[i].(*ast.BasicLit)
						if !ok || lit.Kind != token.INT {
							continue
						}
						if !hasRow(rows, lit.Value, n.Name) {
							t.Errorf("SPEC.md has no table row with wire type %s and `%s`", lit.Value, n.Name)
						}
					}
				}
			}
		}
	}
}
