package file_test

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/wapr-dev/wapr/builtin/secretstores/local/file"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/secretstores"
)

// writeSecrets writes content to a fresh file and returns its path.
func writeSecrets(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secrets.json")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func md(props map[string]string) component.Metadata {
	return component.Metadata{Name: "mysecrets", Type: "secretstores.local.file", Version: "v1", Properties: props}
}

// newStore returns a store initialised over a file holding content, closed
// at the end of the test. extra adds metadata.
func newStore(t *testing.T, content string, extra map[string]string) *file.Store {
	t.Helper()
	props := map[string]string{"secretsFile": writeSecrets(t, content)}
	maps.Copy(props, extra)
	s := file.New()
	t.Cleanup(func() { s.Close(context.Background()) })
	if err := s.Init(t.Context(), md(props)); err != nil {
		t.Fatalf("Init: %v", err)
	}
	return s
}

const nested = `{
	"plain": "p",
	"db": {"user": "u", "password": "pw", "opts": {"tls": true, "port": 5432, "ratio": 1.50, "big": 12345678901234567890}},
	"hosts": ["a", {"name": "b"}, ["c"]],
	"nothing": null,
	"empty": {},
	"none": []
}`

func TestBulkGetSecret(t *testing.T) {
	tests := []struct {
		name    string
		content string
		props   map[string]string
		want    map[string]map[string]string
	}{
		{
			name:    "flattened with the default separator",
			content: nested,
			want: map[string]map[string]string{
				"plain":         {"plain": "p"},
				"db:user":       {"db:user": "u"},
				"db:password":   {"db:password": "pw"},
				"db:opts:tls":   {"db:opts:tls": "true"},
				"db:opts:port":  {"db:opts:port": "5432"},
				"db:opts:ratio": {"db:opts:ratio": "1.50"},
				"db:opts:big":   {"db:opts:big": "12345678901234567890"},
				"hosts:0":       {"hosts:0": "a"},
				"hosts:1:name":  {"hosts:1:name": "b"},
				"hosts:2:0":     {"hosts:2:0": "c"},
				"nothing":       {"nothing": ""},
			},
		},
		{
			name:    "flattened with another separator, key in another case",
			content: `{"a": {"b": {"c": "x"}, "d": ["y"]}}`,
			props:   map[string]string{"NESTEDSEPARATOR": "__"},
			want: map[string]map[string]string{
				"a__b__c": {"a__b__c": "x"},
				"a__d__0": {"a__d__0": "y"},
			},
		},
		{
			name:    "multi-valued",
			content: nested,
			props:   map[string]string{"multiValued": "true"},
			want: map[string]map[string]string{
				"plain":   {"plain": "p"},
				"db":      {"user": "u", "password": "pw", "opts:tls": "true", "opts:port": "5432", "opts:ratio": "1.50", "opts:big": "12345678901234567890"},
				"hosts":   {"0": "a", "1:name": "b", "2:0": "c"},
				"nothing": {"nothing": ""},
				"empty":   {},
				"none":    {},
			},
		},
		{
			name:    "multi-valued with another separator and scalars",
			content: `{"n": 7, "b": false, "s": {"x": {"y": "z"}}}`,
			props:   map[string]string{"multivalued": "1", "nestedSeparator": "."},
			want: map[string]map[string]string{
				"n": {"n": "7"},
				"b": {"b": "false"},
				"s": {"x.y": "z"},
			},
		},
		{
			name:    "multiValued false is the default",
			content: `{"s": {"k": "v"}}`,
			props:   map[string]string{"multiValued": "false"},
			want:    map[string]map[string]string{"s:k": {"s:k": "v"}},
		},
		{name: "empty object", content: `{}`, want: map[string]map[string]string{}},
		{name: "null file", content: `null`, want: map[string]map[string]string{}},
		{
			name:    "strings kept as they are",
			content: `{"multi": "line\nwith \"quotes\" and ünïcode", "": "empty name", "sp ace": " "}`,
			want: map[string]map[string]string{
				"multi":  {"multi": "line\nwith \"quotes\" and ünïcode"},
				"":       {"": "empty name"},
				"sp ace": {"sp ace": " "},
			},
		},
		{
			name:    "empty keys still join",
			content: `{"": {"": "x", "b": "y"}}`,
			want:    map[string]map[string]string{":": {":": "x"}, ":b": {":b": "y"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t, tt.content, tt.props)
			got, err := s.BulkGetSecret(t.Context(), &secretstores.BulkGetRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if !maps.EqualFunc(got, tt.want, maps.Equal) {
				t.Errorf("BulkGetSecret:\n got %v\nwant %v", got, tt.want)
			}
			// GetSecret agrees with BulkGetSecret for every secret.
			for name, want := range tt.want {
				got, err := s.GetSecret(t.Context(), &secretstores.GetRequest{Name: name})
				if err != nil {
					t.Errorf("GetSecret(%q): %v", name, err)
					continue
				}
				if !maps.Equal(got, want) {
					t.Errorf("GetSecret(%q) = %v, want %v", name, got, want)
				}
			}
		})
	}
}

func TestGetSecretNotFound(t *testing.T) {
	tests := []struct {
		name   string
		props  map[string]string
		secret string
	}{
		{name: "unknown name", secret: "nope"},
		{name: "an object is not a secret when flattened", secret: "db"},
		{name: "an array is not a secret when flattened", secret: "hosts"},
		{name: "an empty object is no secret when flattened", secret: "empty"},
		{name: "names are case-sensitive", secret: "PLAIN"},
		{name: "the separator is not guessed", secret: "db.user"},
		{name: "nested key is not a secret when multi-valued", props: map[string]string{"multiValued": "true"}, secret: "db:user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t, nested, tt.props)
			got, err := s.GetSecret(t.Context(), &secretstores.GetRequest{Name: tt.secret})
			if !errors.Is(err, component.ErrNotFound) {
				t.Fatalf("GetSecret(%q) = %v, %v; want ErrNotFound", tt.secret, got, err)
			}
			if want := `secretstores.local.file "mysecrets": secret "` + tt.secret + `" not found`; err.Error() != want {
				t.Errorf("error %q, want %q", err, want)
			}
		})
	}
}

func TestFeatures(t *testing.T) {
	tests := []struct {
		name  string
		props map[string]string
		want  []component.Feature
	}{
		{name: "default", want: []component.Feature{}},
		{name: "multiValued false", props: map[string]string{"multiValued": "false"}, want: []component.Feature{}},
		{name: "multiValued true", props: map[string]string{"multiValued": "true"}, want: []component.Feature{secretstores.FeatureMultipleKeyValuesPerSecret}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t, `{}`, tt.props)
			got := s.Features()
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Features() = %v, want %v", got, tt.want)
			}
			if len(got) > 0 {
				got[0] = "changed"
				if slices.Equal(s.Features(), got) {
					t.Error("Features shares its slice with the caller")
				}
			}
		})
	}
}

func TestInitErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tests := []struct {
		name   string
		props  map[string]string
		fields []string // every field reported, in order
		says   []string // parts of the message
	}{
		{name: "no secretsFile", props: map[string]string{}, fields: []string{"secretsFile"}, says: []string{"is required"}},
		{name: "blank secretsFile", props: map[string]string{"secretsFile": "  "}, fields: []string{"secretsFile"}},
		{
			name:   "missing file",
			props:  map[string]string{"secretsFile": filepath.Join(dir, "absent.json")},
			fields: []string{"secretsFile"},
			says:   []string{"cannot read", filepath.Join(dir, "absent.json"), "no such file"},
		},
		{
			name:   "a directory",
			props:  map[string]string{"secretsFile": dir},
			fields: []string{"secretsFile"},
			says:   []string{"cannot read", dir},
		},
		{
			name:   "bad JSON",
			props:  map[string]string{"secretsFile": write("bad.json", "{\n  \"a\": \"b\",\n  \"c\" 1\n}")},
			fields: []string{"secretsFile"},
			says:   []string{"bad.json", "is not valid JSON", "line 3, column 7"},
		},
		{
			name:   "empty file",
			props:  map[string]string{"secretsFile": write("empty.json", "")},
			fields: []string{"secretsFile"},
			says:   []string{"empty.json", "is not valid JSON", "unexpected end"},
		},
		{
			name:   "trailing data",
			props:  map[string]string{"secretsFile": write("trailing.json", `{"a": "b"} {"c": "d"}`)},
			fields: []string{"secretsFile"},
			says:   []string{"trailing.json", "is not valid JSON", "line 1, column 12"},
		},
		{
			name:   "top-level array",
			props:  map[string]string{"secretsFile": write("array.json", `["a"]`)},
			fields: []string{"secretsFile"},
			says:   []string{"array.json", "must hold a JSON object", "not an array"},
		},
		{
			name:   "top-level string",
			props:  map[string]string{"secretsFile": write("string.json", `"a"`)},
			fields: []string{"secretsFile"},
			says:   []string{"not a string"},
		},
		{
			name:   "names collide once flattened",
			props:  map[string]string{"secretsFile": write("dup.json", `{"a:b": "1", "a": {"b": "2", "c": ["x"]}, "a:c:0": "y"}`)},
			fields: []string{"secretsFile"},
			says:   []string{`names defined twice once nested keys are joined with ":": "a:b", "a:c:0"`},
		},
		{
			name:   "keys collide inside a multi-valued secret",
			props:  map[string]string{"multiValued": "true", "secretsFile": write("dupmulti.json", `{"a:b": "1", "s": {"x.y": "1", "x": {"y": "2"}}}`), "nestedSeparator": "."},
			fields: []string{"secretsFile"},
			says:   []string{`"s" key "x.y"`},
		},
		{
			name:   "multiValued is strict",
			props:  map[string]string{"secretsFile": write("ok.json", `{}`), "multiValued": "yes"},
			fields: []string{"multiValued"},
		},
		{
			name:   "all problems at once",
			props:  map[string]string{"multiValued": "maybe"},
			fields: []string{"secretsFile", "multiValued"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := file.New()
			defer s.Close(context.Background())
			err := s.Init(t.Context(), md(tt.props))
			var ce *component.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("Init = %v, want a *component.ConfigError", err)
			}
			if !errors.Is(err, component.ErrInvalidArgument) {
				t.Error("error does not wrap ErrInvalidArgument")
			}
			var fields []string
			for _, p := range ce.Problems {
				fields = append(fields, p.Field)
			}
			if !slices.Equal(fields, tt.fields) {
				t.Errorf("fields %v, want %v (%v)", fields, tt.fields, err)
			}
			if !strings.HasPrefix(err.Error(), `secretstores.local.file "mysecrets": `) {
				t.Errorf("error %q does not name the component", err)
			}
			for _, part := range tt.says {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not say %q", err, part)
				}
			}
			if _, err := s.GetSecret(t.Context(), &secretstores.GetRequest{Name: "a"}); err == nil {
				t.Error("GetSecret after a failed Init succeeded")
			}
		})
	}
}

func TestRelativePath(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "conf"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "conf", "secrets.json"), []byte(`{"k": "v"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)

	t.Run("relative to the working directory", func(t *testing.T) {
		s := file.New()
		defer s.Close(context.Background())
		if err := s.Init(t.Context(), md(map[string]string{"secretsFile": "conf/secrets.json"})); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetSecret(t.Context(), &secretstores.GetRequest{Name: "k"})
		if err != nil || got["k"] != "v" {
			t.Fatalf("GetSecret = %v, %v", got, err)
		}
	})
	t.Run("a missing relative file is shown with its absolute path", func(t *testing.T) {
		s := file.New()
		defer s.Close(context.Background())
		err := s.Init(t.Context(), md(map[string]string{"secretsFile": "absent.json"}))
		if err == nil || !strings.Contains(err.Error(), `"absent.json" (`+filepath.Join(dir, "absent.json")+`)`) {
			t.Fatalf("Init = %v", err)
		}
	})
}

func TestReadOnceAtInit(t *testing.T) {
	path := writeSecrets(t, `{"k": "before"}`)
	s := file.New()
	defer s.Close(context.Background())
	if err := s.Init(t.Context(), md(map[string]string{"secretsFile": path})); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(`{"k": "after"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetSecret(t.Context(), &secretstores.GetRequest{Name: "k"})
	if err != nil || got["k"] != "before" {
		t.Fatalf("GetSecret = %v, %v; want the value read at Init", got, err)
	}
}

func TestCopiesNotShared(t *testing.T) {
	for _, multi := range []string{"false", "true"} {
		t.Run("multiValued "+multi, func(t *testing.T) {
			s := newStore(t, `{"s": {"k": "v"}}`, map[string]string{"multiValued": multi})
			name, key := "s:k", "s:k"
			if multi == "true" {
				name, key = "s", "k"
			}
			get := func() map[string]string {
				got, err := s.GetSecret(t.Context(), &secretstores.GetRequest{Name: name})
				if err != nil {
					t.Fatal(err)
				}
				return got
			}
			one := get()
			one[key] = "changed"
			one["added"] = "x"
			bulk, err := s.BulkGetSecret(t.Context(), &secretstores.BulkGetRequest{})
			if err != nil {
				t.Fatal(err)
			}
			bulk[name][key] = "changed too"
			delete(bulk, name)
			if got := get(); !maps.Equal(got, map[string]string{key: "v"}) {
				t.Fatalf("after changing returned maps, GetSecret = %v", got)
			}
			bulk, _ = s.BulkGetSecret(t.Context(), &secretstores.BulkGetRequest{})
			if !maps.Equal(bulk[name], map[string]string{key: "v"}) {
				t.Fatalf("after changing returned maps, BulkGetSecret = %v", bulk)
			}
		})
	}
}

func TestConcurrentReads(t *testing.T) {
	s := newStore(t, nested, nil)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				got, err := s.GetSecret(context.Background(), &secretstores.GetRequest{Name: "db:user"})
				if err != nil || got["db:user"] != "u" {
					t.Errorf("GetSecret = %v, %v", got, err)
					return
				}
				got["db:user"] = "x" // the caller owns it
				bulk, err := s.BulkGetSecret(context.Background(), &secretstores.BulkGetRequest{})
				if err != nil {
					t.Error(err)
					return
				}
				bulk["plain"]["plain"] = "x"
			}
		})
	}
	wg.Wait()
}

func TestLifecycle(t *testing.T) {
	path := writeSecrets(t, `{"k": "v"}`)
	props := map[string]string{"secretsFile": path}
	get := func(s *file.Store) error {
		_, err := s.GetSecret(t.Context(), &secretstores.GetRequest{Name: "k"})
		return err
	}
	bulk := func(s *file.Store) error {
		_, err := s.BulkGetSecret(t.Context(), &secretstores.BulkGetRequest{})
		return err
	}

	t.Run("before Init", func(t *testing.T) {
		s := file.New()
		for _, op := range []func(*file.Store) error{get, bulk} {
			if err := op(s); err == nil || !strings.Contains(err.Error(), "before Init") {
				t.Errorf("err = %v, want used before Init", err)
			}
		}
	})
	t.Run("Init twice", func(t *testing.T) {
		s := file.New()
		defer s.Close(context.Background())
		if err := s.Init(t.Context(), md(props)); err != nil {
			t.Fatal(err)
		}
		if err := s.Init(t.Context(), md(props)); err == nil {
			t.Fatal("second Init succeeded")
		}
		if err := get(s); err != nil {
			t.Fatalf("GetSecret after a second Init: %v", err)
		}
	})
	t.Run("Init after a failed Init", func(t *testing.T) {
		s := file.New()
		defer s.Close(context.Background())
		if err := s.Init(t.Context(), md(nil)); err == nil {
			t.Fatal("Init without secretsFile succeeded")
		}
		if err := s.Init(t.Context(), md(props)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("after Close", func(t *testing.T) {
		s := file.New()
		if err := s.Init(t.Context(), md(map[string]string{"secretsFile": path, "multiValued": "true"})); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := s.Close(t.Context()); err != nil {
				t.Fatalf("Close: %v", err)
			}
		}
		for _, op := range []func(*file.Store) error{get, bulk} {
			if err := op(s); !errors.Is(err, component.ErrClosed) || !strings.Contains(err.Error(), `"mysecrets"`) {
				t.Errorf("err = %v, want ErrClosed naming the component", err)
			}
		}
		if err := s.Init(t.Context(), md(props)); !errors.Is(err, component.ErrClosed) {
			t.Errorf("Init after Close = %v, want ErrClosed", err)
		}
	})
	t.Run("Close before Init", func(t *testing.T) {
		s := file.New()
		if err := s.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := get(s); !errors.Is(err, component.ErrClosed) {
			t.Errorf("err = %v, want ErrClosed", err)
		}
	})
}
