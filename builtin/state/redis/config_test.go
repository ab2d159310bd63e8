package redis_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/builtin/state/redis"
	"github.com/wapr-dev/wapr/host/component"
)

func TestConfig(t *testing.T) {
	cert, key := selfSigned(t)
	tests := []struct {
		name  string
		props map[string]string
		check func(t *testing.T, addr string, o optionsView)
		bad   []string // fields reported, in order
	}{
		{
			name:  "defaults",
			props: map[string]string{"redisHost": "localhost:6379"},
			check: func(t *testing.T, addr string, o optionsView) {
				want := optionsView{Addr: "localhost:6379", MaxRetries: 3, MinRetryBackoff: 8 * time.Millisecond, MaxRetryBackoff: 2 * time.Second,
					DialTimeout: 5 * time.Second, ReadTimeout: 3 * time.Second, WriteTimeout: 3 * time.Second}
				if o != want {
					t.Fatalf("options %+v, want %+v", o, want)
				}
			},
		},
		{
			name: "everything, keys in any case",
			props: map[string]string{
				"REDISHOST": "redis.internal", "redisport": "6380", "redisPassword": "pw", "redisUsername": "app", "redisDB": "2",
				"maxRetries": "5", "maxRetryBackoff": "750ms", "dialTimeout": "1s", "readTimeout": "-1", "writeTimeout": "250",
				"poolSize": "7", "minIdleConns": "2", "poolTimeout": "4s", "idleTimeout": "1m", "maxConnAge": "30m", "ttlInSeconds": "60",
				"redisType": "Node", "failover": "false",
			},
			check: func(t *testing.T, addr string, o optionsView) {
				want := optionsView{Addr: "redis.internal:6380", Username: "app", Password: "pw", DB: 2, MaxRetries: 5,
					MinRetryBackoff: 8 * time.Millisecond, MaxRetryBackoff: 750 * time.Millisecond, DialTimeout: time.Second,
					ReadTimeout: -1, WriteTimeout: 250 * time.Millisecond, PoolSize: 7, MinIdleConns: 2, PoolTimeout: 4 * time.Second,
					IdleTimeout: time.Minute, MaxConnAge: 30 * time.Minute, DefaultTTL: time.Minute}
				if o != want {
					t.Fatalf("options %+v, want %+v", o, want)
				}
			},
		},
		{
			name:  "redis-prefixed aliases win",
			props: map[string]string{"redisHost": "h:1", "maxRetries": "5", "redisMaxRetries": "-1", "maxRetryBackoff": "1s", "redisMaxRetryInterval": "3s", "redisMinRetryInterval": "-1"},
			check: func(t *testing.T, addr string, o optionsView) {
				if o.MaxRetries != -1 || o.MaxRetryBackoff != 3*time.Second || o.MinRetryBackoff != -1 {
					t.Fatalf("options %+v", o)
				}
			},
		},
		{
			name:  "write timeout follows read timeout",
			props: map[string]string{"redisHost": "h:1", "readTimeout": "10s"},
			check: func(t *testing.T, addr string, o optionsView) {
				if o.WriteTimeout != 10*time.Second {
					t.Fatalf("write timeout %v", o.WriteTimeout)
				}
			},
		},
		{
			name:  "ipv6",
			props: map[string]string{"redisHost": "[::1]:7000"},
			check: func(t *testing.T, addr string, o optionsView) {
				if o.Addr != "[::1]:7000" {
					t.Fatalf("addr %q", o.Addr)
				}
			},
		},
		{
			name:  "ipv6 without port",
			props: map[string]string{"redisHost": "::1"},
			check: func(t *testing.T, addr string, o optionsView) {
				if o.Addr != "[::1]:6379" {
					t.Fatalf("addr %q", o.Addr)
				}
			},
		},
		{
			name:  "tls",
			props: map[string]string{"redisHost": "h:1", "enableTLS": "true"},
			check: func(t *testing.T, addr string, o optionsView) {
				if !o.TLS || o.SkipVerify || o.Certs != 0 {
					t.Fatalf("options %+v", o)
				}
			},
		},
		{
			name:  "tls with client certificate, unverified",
			props: map[string]string{"redisHost": "h:1", "enableTLS": "true", "clientCert": cert, "clientKey": key, "insecureSkipTLSVerify": "true"},
			check: func(t *testing.T, addr string, o optionsView) {
				if !o.TLS || !o.SkipVerify || o.Certs != 1 {
					t.Fatalf("options %+v", o)
				}
			},
		},
		{name: "minus one ttl is none", props: map[string]string{"redisHost": "h:1", "ttlInSeconds": "-1"}},
		{name: "missing host", props: map[string]string{}, bad: []string{"redisHost"}},
		{name: "blank host", props: map[string]string{"redisHost": "  "}, bad: []string{"redisHost"}},
		{name: "several hosts", props: map[string]string{"redisHost": "a:1,b:2"}, bad: []string{"redisHost"}},
		{name: "bad port", props: map[string]string{"redisHost": "h:port"}, bad: []string{"redisHost"}},
		{name: "port out of range", props: map[string]string{"redisHost": "h:70000"}, bad: []string{"redisHost"}},
		{name: "two ports", props: map[string]string{"redisHost": "h:1", "redisPort": "2"}, bad: []string{"redisPort"}},
		{name: "cluster", props: map[string]string{"redisHost": "h:1", "redisType": "cluster"}, bad: []string{"redisType"}},
		{name: "unknown type", props: map[string]string{"redisHost": "h:1", "redisType": "ring"}, bad: []string{"redisType"}},
		{name: "sentinel", props: map[string]string{"redisHost": "h:1", "failover": "true", "sentinelMasterName": "mymaster"}, bad: []string{"failover", "sentinelMasterName"}},
		{name: "client cert without key", props: map[string]string{"redisHost": "h:1", "enableTLS": "true", "clientCert": cert}, bad: []string{"clientCert"}},
		{name: "client cert without tls", props: map[string]string{"redisHost": "h:1", "clientCert": cert, "clientKey": key}, bad: []string{"clientCert"}},
		{name: "client cert garbage", props: map[string]string{"redisHost": "h:1", "enableTLS": "true", "clientCert": "x", "clientKey": "y"}, bad: []string{"clientCert"}},
		{
			name: "every problem at once",
			props: map[string]string{
				"redisHost": "h:1", "redisDB": "-1", "enableTLS": "maybe", "maxRetries": "-2", "maxRetryBackoff": "soon",
				"dialTimeout": "0", "poolSize": "-1", "minIdleConns": "-1", "poolTimeout": "-1s", "maxConnAge": "-1s", "ttlInSeconds": "-5",
			},
			bad: []string{"redisDB", "enableTLS", "maxRetries", "maxRetryBackoff", "dialTimeout", "poolSize", "minIdleConns", "poolTimeout", "maxConnAge", "ttlInSeconds"},
		},
		{name: "auto-pipelining off", props: map[string]string{"redisHost": "h:1", "autoPipelineBatches": "0"}},
		{name: "auto-pipelining negative", props: map[string]string{"redisHost": "h:1", "autoPipelineBatches": "-1"}, bad: []string{"autoPipelineBatches"}},
		{name: "auto-pipelining too many", props: map[string]string{"redisHost": "h:1", "AUTOPIPELINEBATCHES": "65"}, bad: []string{"autoPipelineBatches"}},
		{name: "auto-pipelining not a number", props: map[string]string{"redisHost": "h:1", "autoPipelineBatches": "lots"}, bad: []string{"autoPipelineBatches"}},
		{name: "more idle than pool", props: map[string]string{"redisHost": "h:1", "poolSize": "2", "minIdleConns": "3"}, bad: []string{"minIdleConns"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, ttl, err := redis.ParseOptions(component.Metadata{Properties: tt.props})
			if len(tt.bad) == 0 {
				if err != nil {
					t.Fatalf("parse: %v", err)
				}
				if tt.check != nil {
					v := optionsView{
						Addr: o.Addr, Username: o.Username, Password: o.Password, DB: o.DB, MaxRetries: o.MaxRetries,
						MinRetryBackoff: o.MinRetryBackoff, MaxRetryBackoff: o.MaxRetryBackoff, DialTimeout: o.DialTimeout,
						ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout, PoolSize: o.PoolSize, MinIdleConns: o.MinIdleConns,
						PoolTimeout: o.PoolTimeout, IdleTimeout: o.ConnMaxIdleTime, MaxConnAge: o.ConnMaxLifetime, DefaultTTL: ttl,
						TLS: o.TLSConfig != nil,
					}
					if o.TLSConfig != nil {
						v.SkipVerify, v.Certs = o.TLSConfig.InsecureSkipVerify, len(o.TLSConfig.Certificates)
					}
					if !o.ContextTimeoutEnabled {
						t.Fatal("context deadlines are not honoured")
					}
					tt.check(t, o.Addr, v)
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

func TestConfigAutoPipeline(t *testing.T) {
	for props, want := range map[string]int{"": 1, "0": 0, "1": 1, "2": 2, "64": 64} {
		md := component.Metadata{Properties: map[string]string{"redisHost": "h:1"}}
		if props != "" {
			md.Properties["autoPipelineBatches"] = props
		}
		got, err := redis.AutoPipelineBatches(md)
		if err != nil || got != want {
			t.Errorf("autoPipelineBatches %q: %d, %v; want %d", props, got, err, want)
		}
	}
}

// optionsView is the part of the client options a test compares.
type optionsView struct {
	Addr, Username, Password               string
	DB, MaxRetries, PoolSize, MinIdleConns int
	MinRetryBackoff, MaxRetryBackoff       time.Duration
	DialTimeout, ReadTimeout, WriteTimeout time.Duration
	PoolTimeout, IdleTimeout, MaxConnAge   time.Duration
	DefaultTTL                             time.Duration
	TLS, SkipVerify                        bool
	Certs                                  int
}

// selfSigned returns a PEM certificate and key.
func selfSigned(t *testing.T) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "wapr"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
}
