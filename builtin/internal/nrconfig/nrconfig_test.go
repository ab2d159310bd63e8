package nrconfig

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/host/component"
)

func TestReader(t *testing.T) {
	tests := []struct {
		name     string
		m        map[string]any
		read     func(r *Reader) any
		want     any
		problems []string // substrings, one per expected problem
	}{
		{"string exact", map[string]any{"clusterDomain": " a.b "}, func(r *Reader) any { return r.String("clusterDomain", "d") }, "a.b", nil},
		{"string case-folded", map[string]any{"CLUSTERDOMAIN": "a.b"}, func(r *Reader) any { return r.String("clusterDomain", "d") }, "a.b", nil},
		{"exact wins", map[string]any{"Port": 1, "port": 2}, func(r *Reader) any { return r.Int("port", 0) }, 2, nil},
		{"nil map", nil, func(r *Reader) any { return r.String("x", "d") }, "d", nil},
		{"null value", map[string]any{"x": nil}, func(r *Reader) any { return r.String("x", "d") }, "d", nil},
		{"blank value", map[string]any{"x": "  "}, func(r *Reader) any { return r.Int("x", 7) }, 7, nil},
		{"string refuses number", map[string]any{"x": 5}, func(r *Reader) any { return r.String("x", "d") }, "d", []string{"x: must be a string, got 5"}},
		{"int", map[string]any{"x": 5}, func(r *Reader) any { return r.Int("x", 0) }, 5, nil},
		{"int from float", map[string]any{"x": 5.0}, func(r *Reader) any { return r.Int("x", 0) }, 5, nil},
		{"int from string", map[string]any{"x": "50002"}, func(r *Reader) any { return r.Int("x", 0) }, 50002, nil},
		{"int refuses fraction", map[string]any{"x": 5.5}, func(r *Reader) any { return r.Int("x", 1) }, 1, []string{"must be an integer, got 5.5"}},
		{"int refuses word", map[string]any{"x": "many"}, func(r *Reader) any { return r.Int("x", 1) }, 1, []string{`must be an integer, got "many"`}},
		{"bool", map[string]any{"x": true}, func(r *Reader) any { return r.Bool("x", false) }, true, nil},
		{"bool from string", map[string]any{"x": "false"}, func(r *Reader) any { return r.Bool("x", true) }, false, nil},
		{"bool refuses number", map[string]any{"x": 2}, func(r *Reader) any { return r.Bool("x", false) }, false, []string{"must be true or false, got 2"}},
		{"duration", map[string]any{"x": "250ms"}, func(r *Reader) any { return r.Duration("x", time.Second) }, 250 * time.Millisecond, nil},
		{"duration refuses bare number", map[string]any{"x": 3}, func(r *Reader) any { return r.Duration("x", time.Second) }, time.Second, []string{"must be a duration"}},
		{"duration refuses map", map[string]any{"x": map[string]any{}}, func(r *Reader) any { return r.Duration("x", time.Second) }, time.Second, []string{"got a map"}},
		{
			"every problem at once",
			map[string]any{"a": 1, "b": "x", "c": []any{}},
			func(r *Reader) any { return []any{r.String("a", ""), r.Int("b", 0), r.Bool("c", false)} },
			nil,
			[]string{"a: must be a string", "b: must be an integer", "c: must be true or false, got a list"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(tt.m)
			got := tt.read(r)
			if tt.want != nil && got != tt.want {
				t.Errorf("value = %v (%T), want %v (%T)", got, got, tt.want, tt.want)
			}
			err := r.Err()
			if len(tt.problems) == 0 {
				if err != nil {
					t.Fatalf("Err = %v, want nil", err)
				}
				return
			}
			var ce *component.ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, component.ErrInvalidArgument) {
				t.Fatalf("Err = %v, want a *component.ConfigError", err)
			}
			if len(ce.Problems) != len(tt.problems) {
				t.Fatalf("problems = %v, want %d", ce.Problems, len(tt.problems))
			}
			for _, p := range tt.problems {
				if !strings.Contains(err.Error(), p) {
					t.Errorf("Err = %q, want it to contain %q", err, p)
				}
			}
		})
	}
}

func TestAddressProblem(t *testing.T) {
	tests := []struct {
		addr string
		want string // substring of the problem; "" means fine
	}{
		{"10.0.0.1:3500", ""},
		{"b-dapr.ns.svc.cluster.local:50002", ""},
		{"[::1]:80", ""},
		{"[fe80::1%eth0]:80", ""},
		{"my_host:65535", ""},
		{"10.0.0.1", "must be host:port"},
		{"::1:80", "must be host:port"},
		{"10.0.0.1:0", "port in 1..65535"},
		{"10.0.0.1:65536", "port in 1..65535"},
		{"10.0.0.1:+80", "port in 1..65535"},
		{"10.0.0.1:http", "port in 1..65535"},
		{":80", "must name a host"},
		{"[zz::1]:80", "valid IPv6"},
		{"a b:80", "host name of letters"},
		{"http://x:80", "must be host:port"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			got := AddressProblem(tt.addr)
			if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
				t.Errorf("AddressProblem(%q) = %q, want %q", tt.addr, got, tt.want)
			}
		})
	}
}

func TestLabelProblem(t *testing.T) {
	tests := []struct {
		s    string
		want string
	}{
		{"orders", ""},
		{"Order_Service-2", ""},
		{strings.Repeat("a", 63), ""},
		{"", "is empty"},
		{strings.Repeat("a", 64), "longer than a DNS label"},
		{"a.b", "letters, digits"},
		{"a b", "letters, digits"},
		{"é", "letters, digits"},
	}
	for _, tt := range tests {
		if got := LabelProblem(tt.s); tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
			t.Errorf("LabelProblem(%q) = %q, want %q", tt.s, got, tt.want)
		}
	}
}
