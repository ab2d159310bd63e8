package env

import (
	"context"
	"errors"
	"maps"
	"os"
	"strings"
	"testing"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/secretstores"
)

func md(props map[string]string) component.Metadata {
	return component.Metadata{Name: "myenv", Type: "secretstores.local.env", Version: "v1", Properties: props}
}

// newStore returns an initialised store, closed at the end of the test.
func newStore(t *testing.T, props map[string]string) *Store {
	t.Helper()
	s := New()
	t.Cleanup(func() { s.Close(context.Background()) })
	if err := s.Init(t.Context(), md(props)); err != nil {
		t.Fatalf("Init: %v", err)
	}
	return s
}

// setenv sets the test's variables and unsets every other one whose name
// contains WAPRTEST, so that tests see only their own.
func setenv(t *testing.T, vars map[string]string) {
	t.Helper()
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.Contains(strings.ToUpper(name), "WAPRTEST") {
			t.Setenv(name, "") // restores it afterwards
			os.Unsetenv(name)
		}
	}
	for k, v := range vars {
		t.Setenv(k, v)
	}
}

// theirs keeps the secrets whose name contains WAPRTEST, leaving out the
// rest of the test process's environment.
func theirs(all map[string]map[string]string) map[string]map[string]string {
	maps.DeleteFunc(all, func(name string, _ map[string]string) bool {
		return !strings.Contains(strings.ToUpper(name), "WAPRTEST")
	})
	return all
}

func TestGetSecret(t *testing.T) {
	vars := map[string]string{
		"WAPRTEST_A":             "a",
		"WAPRTEST_EMPTY":         "",
		"waprtest_lower":         "lower",
		"MYAPP_WAPRTEST_B":       "b",
		"DAPR_WAPRTEST":          "sidecar's",
		"dapr_waprtest_lower":    "sidecar's",
		"APP_API_TOKEN":          "token",
		"app_api_token":          "token",
		"APP_API_TOKEN_WAPRTEST": "allowed",
	}
	type getCase struct {
		name   string
		props  map[string]string
		secret string
		want   string
	}
	tests := []getCase{
		{name: "set", secret: "WAPRTEST_A", want: "a"},
		{name: "set to empty", secret: "WAPRTEST_EMPTY", want: ""},
		{name: "not set is empty, no error", secret: "WAPRTEST_UNSET", want: ""},
		{name: "lower-case name", secret: "waprtest_lower", want: "lower"},
		{name: "with prefix", props: map[string]string{"prefix": "MYAPP_"}, secret: "WAPRTEST_B", want: "b"},
		{name: "prefix key in another case", props: map[string]string{"PREFIX": "MYAPP_"}, secret: "WAPRTEST_B", want: "b"},
		{name: "with prefix the full name is not found", props: map[string]string{"prefix": "MYAPP_"}, secret: "MYAPP_WAPRTEST_B", want: ""},
		{name: "with prefix other variables are hidden", props: map[string]string{"prefix": "MYAPP_"}, secret: "WAPRTEST_A", want: ""},
		{name: "DAPR_ variable", secret: "DAPR_WAPRTEST", want: ""},
		{name: "dapr_ variable in lower case", secret: "dapr_waprtest_lower", want: ""},
		{name: "APP_API_TOKEN", secret: "APP_API_TOKEN", want: ""},
		{name: "app_api_token in lower case", secret: "app_api_token", want: ""},
		{name: "a longer name is not APP_API_TOKEN", secret: "APP_API_TOKEN_WAPRTEST", want: "allowed"},
		{name: "DAPR_ prefix hides everything", props: map[string]string{"prefix": "DAPR_"}, secret: "WAPRTEST", want: ""},
		{name: "dapr_ prefix hides everything", props: map[string]string{"prefix": "dapr_"}, secret: "waprtest_lower", want: ""},
		{name: "prefix completing APP_API_TOKEN", props: map[string]string{"prefix": "APP_"}, secret: "API_TOKEN", want: ""},
	}
	if !foldNames {
		tests = append(tests,
			getCase{name: "names are case-sensitive", secret: "waprtest_a", want: ""},
			getCase{name: "prefix is case-sensitive", props: map[string]string{"prefix": "myapp_"}, secret: "WAPRTEST_B", want: ""},
		)
	}
	setenv(t, vars)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t, tt.props)
			got, err := s.GetSecret(t.Context(), &secretstores.GetRequest{Name: tt.secret})
			if err != nil {
				t.Fatal(err)
			}
			if want := map[string]string{tt.secret: tt.want}; !maps.Equal(got, want) {
				t.Fatalf("GetSecret(%q) = %v, want %v", tt.secret, got, want)
			}
		})
	}
}

func TestBulkGetSecret(t *testing.T) {
	vars := map[string]string{
		"WAPRTEST_A":          "a",
		"WAPRTEST_EMPTY":      "",
		"WAPRTEST_EQ":         "x=y",
		"MYAPP_WAPRTEST_B":    "b",
		"myapp_WAPRTEST_C":    "c",
		"MYAPP_":              "only the prefix",
		"DAPR_WAPRTEST":       "sidecar's",
		"Dapr_WAPRTEST_mixed": "sidecar's",
	}
	one := func(name, value string) map[string]string { return map[string]string{name: value} }
	tests := []struct {
		name  string
		props map[string]string
		want  map[string]map[string]string
	}{
		{
			name: "no prefix",
			want: map[string]map[string]string{
				"WAPRTEST_A":       one("WAPRTEST_A", "a"),
				"WAPRTEST_EMPTY":   one("WAPRTEST_EMPTY", ""),
				"WAPRTEST_EQ":      one("WAPRTEST_EQ", "x=y"),
				"MYAPP_WAPRTEST_B": one("MYAPP_WAPRTEST_B", "b"),
				"myapp_WAPRTEST_C": one("myapp_WAPRTEST_C", "c"),
			},
		},
		{
			name:  "prefix stripped",
			props: map[string]string{"prefix": "MYAPP_"},
			want:  map[string]map[string]string{"WAPRTEST_B": one("WAPRTEST_B", "b")},
		},
		{
			name:  "DAPR_ prefix",
			props: map[string]string{"prefix": "DAPR_"},
			want:  map[string]map[string]string{},
		},
	}
	setenv(t, vars)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t, tt.props)
			all, err := s.BulkGetSecret(t.Context(), &secretstores.BulkGetRequest{})
			if err != nil {
				t.Fatal(err)
			}
			for name := range all {
				if u := strings.ToUpper(tt.props["prefix"] + name); strings.HasPrefix(u, "DAPR_") || u == "APP_API_TOKEN" {
					t.Errorf("BulkGetSecret exposes %s", name)
				}
			}
			if _, ok := all[""]; ok {
				t.Error("BulkGetSecret returns a secret with an empty name")
			}
			if got := theirs(all); !maps.EqualFunc(got, tt.want, maps.Equal) {
				t.Errorf("BulkGetSecret:\n got %v\nwant %v", got, tt.want)
			}
		})
	}

	t.Run("sidecar tokens", func(t *testing.T) {
		t.Setenv("APP_API_TOKEN", "token")
		t.Setenv("DAPR_API_TOKEN", "token")
		all, err := newStore(t, nil).BulkGetSecret(t.Context(), &secretstores.BulkGetRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := all["APP_API_TOKEN"]; ok {
			t.Error("APP_API_TOKEN exposed")
		}
		if _, ok := all["DAPR_API_TOKEN"]; ok {
			t.Error("DAPR_API_TOKEN exposed")
		}
	})
	t.Run("read at every call", func(t *testing.T) {
		s := newStore(t, map[string]string{"prefix": "MYAPP_"})
		t.Setenv("MYAPP_WAPRTEST_LATE", "late")
		all, err := s.BulkGetSecret(t.Context(), &secretstores.BulkGetRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(all["WAPRTEST_LATE"], one("WAPRTEST_LATE", "late")) {
			t.Errorf("variable set after Init: %v", all["WAPRTEST_LATE"])
		}
	})
}

func TestStripPrefix(t *testing.T) {
	tests := []struct {
		name, variable, prefix string
		fold                   bool
		want                   string
		ok                     bool
	}{
		{name: "no prefix", variable: "A", want: "A", ok: true},
		{name: "match", variable: "MYAPP_A", prefix: "MYAPP_", want: "A", ok: true},
		{name: "no match", variable: "OTHER_A", prefix: "MYAPP_"},
		{name: "only the prefix", variable: "MYAPP_", prefix: "MYAPP_"},
		{name: "shorter", variable: "MY", prefix: "MYAPP_"},
		{name: "case differs", variable: "myapp_A", prefix: "MYAPP_"},
		{name: "case differs, folded", variable: "myapp_A", prefix: "MYAPP_", fold: true, want: "A", ok: true},
		{name: "name keeps its case, folded", variable: "MyApp_b", prefix: "myapp_", fold: true, want: "b", ok: true},
		{name: "no match, folded", variable: "OTHER_A", prefix: "myapp_", fold: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := stripPrefix(tt.variable, tt.prefix, tt.fold)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("stripPrefix(%q, %q, %v) = %q, %v; want %q, %v", tt.variable, tt.prefix, tt.fold, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestCopiesNotShared(t *testing.T) {
	setenv(t, map[string]string{"WAPRTEST_A": "a"})
	s := newStore(t, nil)
	got, err := s.GetSecret(t.Context(), &secretstores.GetRequest{Name: "WAPRTEST_A"})
	if err != nil {
		t.Fatal(err)
	}
	got["WAPRTEST_A"] = "changed"
	all, err := s.BulkGetSecret(t.Context(), &secretstores.BulkGetRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if all["WAPRTEST_A"]["WAPRTEST_A"] != "a" {
		t.Fatalf("bulk sees the change: %v", all["WAPRTEST_A"])
	}
	if os.Getenv("WAPRTEST_A") != "a" {
		t.Fatal("the environment changed")
	}
}

func TestFeatures(t *testing.T) {
	if got := newStore(t, nil).Features(); len(got) != 0 || got == nil {
		t.Fatalf("Features() = %#v, want an empty slice", got)
	}
}

func TestLifecycle(t *testing.T) {
	get := func(s *Store) error {
		_, err := s.GetSecret(t.Context(), &secretstores.GetRequest{Name: "PATH"})
		return err
	}
	bulk := func(s *Store) error {
		_, err := s.BulkGetSecret(t.Context(), &secretstores.BulkGetRequest{})
		return err
	}
	ops := []func(*Store) error{get, bulk}

	t.Run("before Init", func(t *testing.T) {
		for _, op := range ops {
			if err := op(New()); err == nil || !strings.Contains(err.Error(), "before Init") {
				t.Errorf("err = %v, want used before Init", err)
			}
		}
	})
	t.Run("Init twice", func(t *testing.T) {
		s := newStore(t, nil)
		if err := s.Init(t.Context(), md(nil)); err == nil {
			t.Fatal("second Init succeeded")
		}
	})
	t.Run("after Close", func(t *testing.T) {
		s := newStore(t, nil)
		for range 2 {
			if err := s.Close(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		for _, op := range ops {
			if err := op(s); !errors.Is(err, component.ErrClosed) || !strings.Contains(err.Error(), `secretstores.local.env "myenv"`) {
				t.Errorf("err = %v, want ErrClosed naming the component", err)
			}
		}
		if err := s.Init(t.Context(), md(nil)); !errors.Is(err, component.ErrClosed) {
			t.Errorf("Init after Close = %v, want ErrClosed", err)
		}
	})
	t.Run("Close before Init", func(t *testing.T) {
		s := New()
		if err := s.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := get(s); !errors.Is(err, component.ErrClosed) {
			t.Errorf("err = %v, want ErrClosed", err)
		}
	})
}

func TestExposed(t *testing.T) {
	hidden := []string{"APP_API_TOKEN", "app_api_token", "App_Api_Token", "DAPR_API_TOKEN", "DAPR_", "dapr_x", "Dapr_HTTP_PORT"}
	shown := []string{"APP_API_TOKEN2", "XAPP_API_TOKEN", "DAPR", "DAPRX", "MY_DAPR_X", "PATH", ""}
	for _, name := range hidden {
		if exposed(name) {
			t.Errorf("exposed(%q) = true", name)
		}
	}
	for _, name := range shown {
		if !exposed(name) {
			t.Errorf("exposed(%q) = false", name)
		}
	}
}
