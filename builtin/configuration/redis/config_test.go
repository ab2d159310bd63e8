package redis_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/builtin/configuration/redis"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/configuration"
)

func TestConfig(t *testing.T) {
	tests := []struct {
		name  string
		props map[string]string
		addr  string
		db    int
		bad   []string // fields reported, sorted; nil: valid
	}{
		{name: "host only", props: map[string]string{"redisHost": "localhost"}, addr: "localhost:6379"},
		{name: "keys in any case", props: map[string]string{"REDISHOST": "redis.internal", "redisport": "6380", "RedisDB": "3"}, addr: "redis.internal:6380", db: 3},
		{name: "missing host", props: map[string]string{}, bad: []string{"redisHost"}},
		{
			name: "every problem at once",
			props: map[string]string{
				"redisHost": "a:1,b:2", "redisDB": "-1", "maxRetries": "many", "redisType": "cluster",
				"failover": "true", "dialTimeout": "0",
			},
			bad: []string{"dialTimeout", "failover", "maxRetries", "redisDB", "redisHost", "redisType"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			md := component.Metadata{Name: "config", Type: "configuration.redis", Properties: tt.props}
			o, err := redis.ParseOptions(md)
			if tt.bad == nil {
				if err != nil {
					t.Fatalf("ParseOptions: %v", err)
				}
				if o.Addr != tt.addr || o.DB != tt.db || o.MaxRetries != 3 || o.ReadTimeout != 3*time.Second {
					t.Fatalf("options addr %q db %d maxRetries %d readTimeout %v, want %q %d 3 3s", o.Addr, o.DB, o.MaxRetries, o.ReadTimeout, tt.addr, tt.db)
				}
				return
			}
			var ce *component.ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, component.ErrInvalidArgument) {
				t.Fatalf("ParseOptions error = %v, want a *component.ConfigError", err)
			}
			var fields []string
			for _, p := range ce.Problems {
				fields = append(fields, p.Field)
			}
			slices.Sort(fields)
			fields = slices.Compact(fields)
			if !slices.Equal(fields, tt.bad) {
				t.Fatalf("fields %v, want %v (%v)", fields, tt.bad, err)
			}
			// Init reports the same, naming the component, without
			// connecting anywhere.
			s := redis.New()
			defer s.Close(context.Background())
			initErr := s.Init(context.Background(), md)
			if !errors.As(initErr, &ce) || initErr.Error() != `configuration.redis "config": `+err.Error() {
				t.Fatalf("Init error = %v, want %q", initErr, `configuration.redis "config": `+err.Error())
			}
		})
	}
}

func TestParseItem(t *testing.T) {
	tests := []struct {
		raw  string
		want *configuration.Item // nil: left out
	}{
		{raw: "blue||3", want: &configuration.Item{Value: "blue", Version: "3"}},
		{raw: "blue", want: &configuration.Item{Value: "blue"}},
		{raw: "blue||", want: &configuration.Item{Value: "blue"}},
		{raw: "blue||3||rest", want: &configuration.Item{Value: "blue", Version: "3"}},
		{raw: "a|b||v1", want: &configuration.Item{Value: "a|b", Version: "v1"}},
		{raw: "", want: nil},
		{raw: "||3", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			got := redis.ParseItem(tt.raw)
			switch {
			case tt.want == nil && got != nil:
				t.Fatalf("ParseItem(%q) = %+v, want left out", tt.raw, got)
			case tt.want != nil && (got == nil || got.Value != tt.want.Value || got.Version != tt.want.Version || got.Metadata != nil):
				t.Fatalf("ParseItem(%q) = %+v, want %+v", tt.raw, got, tt.want)
			}
		})
	}
}

func TestMissingEvents(t *testing.T) {
	tests := []struct{ flags, want string }{
		{"", "Kg$xe"},
		{"Kg$xe", ""},
		{"AK", ""},
		{"AKE", ""},
		{"KA", ""},
		{"A", "K"},
		{"Ex", "Kg$e"},
		{"Kh", "g$xe"},
		{"E$gxe", "K"},
	}
	for _, tt := range tests {
		t.Run(tt.flags, func(t *testing.T) {
			if got := redis.MissingEvents(tt.flags); got != tt.want {
				t.Fatalf("MissingEvents(%q) = %q, want %q", tt.flags, got, tt.want)
			}
		})
	}
}
