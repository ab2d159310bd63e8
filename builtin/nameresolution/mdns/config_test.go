package mdns

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/host/component"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name   string
		config map[string]any
		want   config // iface compared by name
		iface  string
	}{
		{"nil", nil, config{timeout: time.Second}, ""},
		{"empty values are defaults", map[string]any{"interface": "", "timeout": nil}, config{timeout: time.Second}, ""},
		{
			"every key, in other cases",
			map[string]any{"Interface": "lo", "TIMEOUT": "250ms", "IPv6": true},
			config{timeout: 250 * time.Millisecond, ipv6: true}, "lo",
		},
		{"ipv6 as a string", map[string]any{"ipv6": "false"}, config{timeout: time.Second}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseConfig(tt.config)
			if err != nil {
				t.Fatal(err)
			}
			name := ""
			if got.iface != nil {
				name = got.iface.Name
			}
			if name != tt.iface || got.timeout != tt.want.timeout || got.ipv6 != tt.want.ipv6 {
				t.Errorf("parseConfig = {iface %q, %+v}, want {iface %q, %+v}", name, got, tt.iface, tt.want)
			}
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name     string
		config   map[string]any
		problems []string // one substring per expected problem
	}{
		{"unknown interface", map[string]any{"interface": "nope0"}, []string{`interface: no network interface is named "nope0" (this host has `}},
		{"interface not a string", map[string]any{"interface": 1}, []string{"interface: must be a string"}},
		{"zero timeout", map[string]any{"timeout": "0s"}, []string{"timeout: must be positive"}},
		{"long timeout", map[string]any{"timeout": "2m"}, []string{"timeout: must be positive and at most 1m0s, got 2m0s"}},
		{"timeout without a unit", map[string]any{"timeout": 5}, []string{"timeout: must be a duration"}},
		{"ipv6 not a bool", map[string]any{"ipv6": "maybe"}, []string{`ipv6: must be true or false, got "maybe"`}},
		{
			"every problem at once",
			map[string]any{"interface": "nope0", "timeout": "-1s", "ipv6": 3},
			[]string{"interface:", "timeout:", "ipv6:"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig(tt.config)
			var ce *component.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("parseConfig = %v, want a *component.ConfigError", err)
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
