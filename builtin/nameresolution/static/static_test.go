package static

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/nameresolution"
)

var table = map[string]any{
	"Apps": map[string]any{ // the key in another case
		"orders":      []any{"10.0.0.5:50002", "10.0.0.6:50002"},
		"orders.prod": []any{"10.1.0.5:50002"},
		"billing":     "billing.internal:50002",
		"audit.prod":  "[fd00::7]:50002",
	},
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name    string
		ownNS   string // Instance.Namespace
		req     nameresolution.Request
		want    []string
		wantErr error
	}{
		{"list", "", nameresolution.Request{ID: "orders"}, []string{"10.0.0.5:50002", "10.0.0.6:50002"}, nil},
		{"single string", "", nameresolution.Request{ID: "billing"}, []string{"billing.internal:50002"}, nil},
		{"namespaced entry", "", nameresolution.Request{ID: "orders", Namespace: "prod"}, []string{"10.1.0.5:50002"}, nil},
		{"other namespace falls back to the bare id", "", nameresolution.Request{ID: "orders", Namespace: "dev"}, []string{"10.0.0.5:50002", "10.0.0.6:50002"}, nil},
		{"own namespace first", "prod", nameresolution.Request{ID: "orders"}, []string{"10.1.0.5:50002"}, nil},
		{"own namespace falls back to the bare id", "prod", nameresolution.Request{ID: "billing"}, []string{"billing.internal:50002"}, nil},
		{"namespace only entry via own namespace", "prod", nameresolution.Request{ID: "audit"}, []string{"[fd00::7]:50002"}, nil},
		{"request namespace wins over own", "prod", nameresolution.Request{ID: "orders", Namespace: "dev"}, []string{"10.0.0.5:50002", "10.0.0.6:50002"}, nil},
		{"namespace only entry without namespace", "", nameresolution.Request{ID: "audit"}, nil, nameresolution.ErrNotFound},
		{"unknown id", "", nameresolution.Request{ID: "nobody"}, nil, nameresolution.ErrNotFound},
		{"app ids are case-sensitive", "", nameresolution.Request{ID: "Orders"}, nil, nameresolution.ErrNotFound},
		{"empty id", "", nameresolution.Request{}, nil, component.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New()
			md := nameresolution.Metadata{Instance: nameresolution.Instance{AppID: "me", Namespace: tt.ownNS}, Configuration: table}
			if err := r.Init(t.Context(), md); err != nil {
				t.Fatal(err)
			}
			defer r.Close(context.Background())
			got, err := r.Resolve(t.Context(), tt.req)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Resolve = %v, %v; want an error wrapping %v", got, err, tt.wantErr)
				}
				if tt.req.ID != "" && !strings.Contains(err.Error(), `"`+tt.req.ID+`"`) {
					t.Errorf("error %q does not name the id", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Resolve = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestResolveReturnsACopy(t *testing.T) {
	r := New()
	if err := r.Init(t.Context(), nameresolution.Metadata{Configuration: table}); err != nil {
		t.Fatal(err)
	}
	first, _ := r.Resolve(t.Context(), nameresolution.Request{ID: "orders"})
	first[0] = "changed:1"
	second, _ := r.Resolve(t.Context(), nameresolution.Request{ID: "orders"})
	if second[0] != "10.0.0.5:50002" {
		t.Errorf("a caller's change leaked into the table: %q", second)
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name     string
		config   map[string]any
		problems []string // one substring per expected problem
	}{
		{"nil configuration", nil, []string{"apps: is required"}},
		{"apps not a map", map[string]any{"apps": []any{"a"}}, []string{"apps: must be a map"}},
		{
			"every bad entry at once",
			map[string]any{"apps": map[string]any{
				"a":      []any{"10.0.0.1:80", "10.0.0.1", 5, "h:0"},
				"b":      []any{},
				"c":      7,
				".ns":    "x:1",
				"d.":     "x:1",
				"e.f.g":  "x:1",
				"h i":    "x:1",
				"ok.ns":  "ok.example:443",
				"j":      "not an address:80",
				"k.prod": []any{"[::1]:99999"},
			}},
			[]string{
				"apps.a[1]: must be host:port",
				"apps.a[2]: must be a host:port string, got 5",
				"apps.a[3]: must have a port in 1..65535",
				"apps.b: must list at least one address",
				"apps.c: must be an address or a list of addresses, got 7",
				"apps..ns: must start with an app id",
				`apps.d.: must be "id" or "id.namespace"`,
				`apps.e.f.g: must be "id" or "id.namespace"`,
				"apps.h i: must not contain spaces",
				"apps.j[0]: must have a host name of letters",
				"apps.k.prod[0]: must have a port in 1..65535",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := New().Init(t.Context(), nameresolution.Metadata{Configuration: tt.config})
			var ce *component.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("Init = %v, want a *component.ConfigError", err)
			}
			if len(ce.Problems) != len(tt.problems) {
				t.Errorf("got %d problems, want %d: %v", len(ce.Problems), len(tt.problems), err)
			}
			for _, p := range tt.problems {
				if !strings.Contains(err.Error(), p) {
					t.Errorf("error %q lacks %q", err, p)
				}
			}
		})
	}
}

func TestEmptyTableIsAllowed(t *testing.T) {
	r := New()
	if err := r.Init(t.Context(), nameresolution.Metadata{Configuration: map[string]any{"apps": map[string]any{}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Resolve(t.Context(), nameresolution.Request{ID: "a"}); !errors.Is(err, nameresolution.ErrNotFound) {
		t.Errorf("Resolve = %v, want ErrNotFound", err)
	}
}
