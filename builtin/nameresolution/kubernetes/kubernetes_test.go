package kubernetes

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/nameresolution"
)

func TestResolve(t *testing.T) {
	tests := []struct {
		name     string
		instance nameresolution.Instance
		config   map[string]any
		req      nameresolution.Request
		want     string
	}{
		{
			name: "defaults: namespace default, port 50002",
			req:  nameresolution.Request{ID: "orders"},
			want: "orders-dapr.default.svc.cluster.local:50002",
		},
		{
			name:     "own namespace and internal port",
			instance: nameresolution.Instance{AppID: "me", Namespace: "shop", InternalPort: 50010},
			req:      nameresolution.Request{ID: "orders"},
			want:     "orders-dapr.shop.svc.cluster.local:50010",
		},
		{
			name:     "request namespace wins",
			instance: nameresolution.Instance{Namespace: "shop"},
			req:      nameresolution.Request{ID: "orders", Namespace: "billing"},
			want:     "orders-dapr.billing.svc.cluster.local:50002",
		},
		{
			name:     "configured port wins over the internal port",
			instance: nameresolution.Instance{InternalPort: 50010},
			config:   map[string]any{"port": 3501},
			req:      nameresolution.Request{ID: "orders"},
			want:     "orders-dapr.default.svc.cluster.local:3501",
		},
		{
			name:   "cluster domain, key in another case",
			config: map[string]any{"ClusterDomain": "corp.example"},
			req:    nameresolution.Request{ID: "orders", Namespace: "prod"},
			want:   "orders-dapr.prod.svc.corp.example:50002",
		},
		{
			name:     "template",
			instance: nameresolution.Instance{Namespace: "shop", InternalPort: 50010},
			config:   map[string]any{"template": "{{.ID}}-dapr.{{.Namespace}}.internal:{{.Port}}"},
			req:      nameresolution.Request{ID: "orders"},
			want:     "orders-dapr.shop.internal:50010",
		},
		{
			name:   "template wins over clusterDomain, as in Dapr",
			config: map[string]any{"template": "{{.ID}}.mesh:{{.Port}}", "clusterDomain": "corp.example"},
			req:    nameresolution.Request{ID: "orders", Namespace: "prod"},
			want:   "orders.mesh:50002",
		},
		{
			name:   "template with a fixed port and surrounding blanks",
			config: map[string]any{"template": " {{.ID}}.{{.Namespace}}.svc:8080\n"},
			req:    nameresolution.Request{ID: "orders"},
			want:   "orders.default.svc:8080",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New()
			if err := r.Init(t.Context(), nameresolution.Metadata{Instance: tt.instance, Configuration: tt.config}); err != nil {
				t.Fatal(err)
			}
			defer r.Close(context.Background())
			got, err := r.Resolve(t.Context(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, []string{tt.want}) {
				t.Errorf("Resolve = %q, want [%q]", got, tt.want)
			}
		})
	}
}

func TestResolveRefusesBadNames(t *testing.T) {
	tests := []struct {
		name string
		req  nameresolution.Request
		want string
	}{
		{"empty id", nameresolution.Request{}, `app id "" is empty`},
		{"dotted id", nameresolution.Request{ID: "a.b"}, `app id "a.b" must be letters`},
		{"long id", nameresolution.Request{ID: strings.Repeat("a", 64)}, "longer than a DNS label"},
		{"bad namespace", nameresolution.Request{ID: "a", Namespace: "x/y"}, `namespace "x/y" must be letters`},
	}
	r := New()
	if err := r.Init(t.Context(), nameresolution.Metadata{}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.Resolve(t.Context(), tt.req)
			if !errors.Is(err, component.ErrInvalidArgument) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Resolve = %v, want ErrInvalidArgument mentioning %q", err, tt.want)
			}
		})
	}
}

func TestInitRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name     string
		config   map[string]any
		problems []string // one substring per expected problem
	}{
		{"port out of range", map[string]any{"port": 70000}, []string{"port: must be in 1..65535"}},
		{"negative port", map[string]any{"port": -1}, []string{"port: must be in 1..65535"}},
		{"port not a number", map[string]any{"port": "http"}, []string{"port: must be an integer"}},
		{"domain not a string", map[string]any{"clusterDomain": 5}, []string{"clusterDomain: must be a string"}},
		{"domain with a space", map[string]any{"clusterDomain": "cluster local"}, []string{"clusterDomain: must be a DNS domain"}},
		{"domain with an empty label", map[string]any{"clusterDomain": "cluster..local"}, []string{"clusterDomain: must be a DNS domain"}},
		{"template syntax", map[string]any{"template": "{{.ID"}, []string{"template: does not parse"}},
		{"template uses Dapr's Data", map[string]any{"template": "{{.ID}}-{{.Data.region}}.internal:{{.Port}}"}, []string{"template: must use only", "Data"}},
		{"template without a port", map[string]any{"template": "{{.ID}}.internal"}, []string{"template: must use only", "host:port"}},
		{
			"every problem at once",
			map[string]any{"port": 0.5, "clusterDomain": "a b", "template": "{{"},
			[]string{"port:", "clusterDomain:", "template:"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := New().Init(t.Context(), nameresolution.Metadata{Configuration: tt.config})
			var ce *component.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("Init = %v, want a *component.ConfigError", err)
			}
			if tt.name == "every problem at once" && len(ce.Problems) != 3 {
				t.Errorf("got %d problems, want 3: %v", len(ce.Problems), err)
			}
			for _, p := range tt.problems {
				if !strings.Contains(err.Error(), p) {
					t.Errorf("error %q lacks %q", err, p)
				}
			}
		})
	}
}

func TestTemplateOutputCheckedAtResolve(t *testing.T) {
	// The template renders fine at Init but not for this id.
	r := New()
	cfg := map[string]any{"template": `{{if eq .ID "odd"}}no port{{else}}{{.ID}}.x:1{{end}}`}
	if err := r.Init(t.Context(), nameresolution.Metadata{Configuration: cfg}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Resolve(t.Context(), nameresolution.Request{ID: "odd"}); err == nil || !strings.Contains(err.Error(), "host:port") {
		t.Errorf("Resolve = %v, want an error about host:port", err)
	}
}
