package redis_test

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/builtin/pubsub/redis"
	"github.com/wapr-dev/wapr/host/component"
)

func TestConfig(t *testing.T) {
	host, _ := os.Hostname()
	process := host + "-" + strconv.Itoa(os.Getpid())
	tests := []struct {
		name  string
		props map[string]string
		want  redis.Settings
		check func(t *testing.T, addr string, maxRetries int, readTimeout time.Duration)
		bad   []string // fields reported, in order
	}{
		{
			name:  "defaults",
			props: map[string]string{"redisHost": "localhost"},
			want:  redis.Settings{Group: process, GeneratedGroup: true, ProcessingTimeout: time.Minute, RedeliverInterval: 15 * time.Second, QueueDepth: 100, Concurrency: 10},
			check: func(t *testing.T, addr string, maxRetries int, readTimeout time.Duration) {
				if addr != "localhost:6379" || maxRetries != 3 || readTimeout != 3*time.Second {
					t.Fatalf("addr %s, maxRetries %d, readTimeout %v", addr, maxRetries, readTimeout)
				}
			},
		},
		{
			name: "everything, keys in any case",
			props: map[string]string{
				"redisHost": "r:1", "CONSUMERID": "orders-app", "processingtimeout": "30s", "redeliverInterval": "500",
				"queueDepth": "10", "concurrency": "1", "maxLenApprox": "1000", "maxRetries": "-1", "readTimeout": "-1",
			},
			want: redis.Settings{Group: "orders-app", ProcessingTimeout: 30 * time.Second, RedeliverInterval: 500 * time.Millisecond, QueueDepth: 10, Concurrency: 1, MaxLenApprox: 1000},
			check: func(t *testing.T, addr string, maxRetries int, readTimeout time.Duration) {
				if maxRetries != -1 || readTimeout != -1 {
					t.Fatalf("maxRetries %d, readTimeout %v", maxRetries, readTimeout)
				}
			},
		},
		{
			name:  "reclaiming off",
			props: map[string]string{"redisHost": "r:1", "consumerID": "a", "processingTimeout": "0", "redeliverInterval": "0"},
			want:  redis.Settings{Group: "a", QueueDepth: 100, Concurrency: 10},
		},
		{name: "missing host", props: map[string]string{"consumerID": "a"}, bad: []string{"redisHost"}},
		{name: "cluster", props: map[string]string{"redisHost": "a:1,b:1"}, bad: []string{"redisHost"}},
		{name: "sentinel", props: map[string]string{"redisHost": "r:1", "failover": "true"}, bad: []string{"failover"}},
		{
			name: "every problem at once",
			props: map[string]string{
				"redisHost": "r:1", "processingTimeout": "-1s", "redeliverInterval": "often", "queueDepth": "0",
				"concurrency": "-3", "maxLenApprox": "-1", "redisType": "cluster",
			},
			bad: []string{"redisType", "processingTimeout", "redeliverInterval", "queueDepth", "concurrency", "maxLenApprox"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, got, err := redis.ParseConfig(component.Metadata{Properties: tt.props})
			if len(tt.bad) == 0 {
				if err != nil {
					t.Fatalf("parse: %v", err)
				}
				if got != tt.want {
					t.Fatalf("settings %+v, want %+v", got, tt.want)
				}
				if tt.check != nil {
					tt.check(t, o.Addr, o.MaxRetries, o.ReadTimeout)
				}
				return
			}
			var ce *component.ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, component.ErrInvalidArgument) {
				t.Fatalf("parse = %v, want a *component.ConfigError", err)
			}
			var fields []string
			for _, p := range ce.Problems {
				fields = append(fields, p.Field)
			}
			if fmt.Sprint(fields) != fmt.Sprint(tt.bad) {
				t.Fatalf("problems with %v, want %v (%v)", fields, tt.bad, err)
			}
		})
	}
}
