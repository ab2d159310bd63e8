package httpbinding

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wapr-dev/wapr/host/component"
)

func md(props map[string]string) component.Metadata {
	return component.Metadata{Name: "myhttp", Type: "bindings.http", Version: "v1", Properties: props}
}

func TestParseConfigValues(t *testing.T) {
	tests := []struct {
		name  string
		props map[string]string
		check func(t *testing.T, c config)
	}{
		{
			name:  "defaults",
			props: map[string]string{"url": "http://example.com/api"},
			check: func(t *testing.T, c config) {
				if c.url.String() != "http://example.com/api" || c.base != "http://example.com/api" {
					t.Errorf("url = %s, base = %s", c.url, c.base)
				}
				if c.responseTimeout != DefaultResponseTimeout {
					t.Errorf("responseTimeout = %s, want %s", c.responseTimeout, DefaultResponseTimeout)
				}
				if c.maxResponseBodySize != 100<<20 {
					t.Errorf("maxResponseBodySize = %d, want 100 MiB", c.maxResponseBodySize)
				}
				if !c.errorIfNot2XX {
					t.Error("errorIfNot2XX defaults to false, want true")
				}
				if c.tls != nil || c.securityToken != "" || c.securityTokenHeader != "" {
					t.Errorf("unexpected tls or token: %+v", c)
				}
			},
		},
		{
			name: "every key, Dapr's spelling in other cases",
			props: map[string]string{
				"URL":                 "https://user:pw@example.com:8443/api/?key=1#frag",
				"ResponseTimeout":     "250ms",
				"maxresponsebodysize": "2Mi",
				"ErrorIfNot2XX":       "false",
				"securityToken":       "s3cret",
				"SecurityTokenHeader": "X-Token",
				"MTLSRenegotiation":   "RenegotiateOnceAsClient",
			},
			check: func(t *testing.T, c config) {
				if c.base != "https://user:pw@example.com:8443/api" {
					t.Errorf("base = %s", c.base)
				}
				if c.url.RawQuery != "key=1" {
					t.Errorf("query = %s", c.url.RawQuery)
				}
				if c.responseTimeout != 250*time.Millisecond || c.maxResponseBodySize != 2<<20 || c.errorIfNot2XX {
					t.Errorf("got %s %d %v", c.responseTimeout, c.maxResponseBodySize, c.errorIfNot2XX)
				}
				if c.securityToken != "s3cret" || c.securityTokenHeader != "X-Token" {
					t.Errorf("token %q header %q", c.securityToken, c.securityTokenHeader)
				}
				if c.tls == nil || c.tls.Renegotiation == 0 {
					t.Errorf("tls = %+v, want renegotiation set", c.tls)
				}
			},
		},
		{
			name:  "bare integer timeout is seconds, size in bytes, 0 means unlimited",
			props: map[string]string{"url": "http://h", "responseTimeout": "7", "maxResponseBodySize": "0"},
			check: func(t *testing.T, c config) {
				if c.responseTimeout != 7*time.Second || c.maxResponseBodySize != 0 {
					t.Errorf("got %s %d", c.responseTimeout, c.maxResponseBodySize)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(md(tt.props))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		props  map[string]string
		fields []string // every field the error must name, sorted
	}{
		{"missing url and bad timeout", map[string]string{"responseTimeout": "soon"}, []string{"responseTimeout", "url"}},
		{"empty url", map[string]string{"url": "  "}, []string{"url"}},
		{"relative url", map[string]string{"url": "/api"}, []string{"url"}},
		{"host without scheme", map[string]string{"url": "localhost:8080"}, []string{"url"}},
		{"other scheme", map[string]string{"url": "ftp://example.com"}, []string{"url"}},
		{"no host", map[string]string{"url": "http:///path"}, []string{"url"}},
		{"unparsable url", map[string]string{"url": "http://exa mple.com/"}, []string{"url"}},
		{"zero timeout", map[string]string{"url": "http://h", "responseTimeout": "0s"}, []string{"responseTimeout"}},
		{"negative timeout", map[string]string{"url": "http://h", "responseTimeout": "-1s"}, []string{"responseTimeout"}},
		{"bad size", map[string]string{"url": "http://h", "maxResponseBodySize": "10XB"}, []string{"maxResponseBodySize"}},
		{"fractional size", map[string]string{"url": "http://h", "maxResponseBodySize": "1.5Mi"}, []string{"maxResponseBodySize"}},
		{"overflowing size", map[string]string{"url": "http://h", "maxResponseBodySize": "99999999999Ti"}, []string{"maxResponseBodySize"}},
		{"bad bool", map[string]string{"url": "http://h", "errorIfNot2XX": "maybe"}, []string{"errorIfNot2XX"}},
		{"token without header", map[string]string{"url": "http://h", "securityToken": "t"}, []string{"securityTokenHeader"}},
		{"header without token", map[string]string{"url": "http://h", "securityTokenHeader": "X-T"}, []string{"securityToken"}},
		{"header that is not a name", map[string]string{"url": "http://h", "securityToken": "t", "securityTokenHeader": "Authorization: Bearer"}, []string{"securityTokenHeader"}},
		{"token with line break", map[string]string{"url": "http://h", "securityToken": "a\nb", "securityTokenHeader": "X-T"}, []string{"securityToken"}},
		{"cert without key", map[string]string{"url": "https://h", "mtlsClientCert": notPEM}, []string{"mtlsClientKey"}},
		{"key without cert", map[string]string{"url": "https://h", "mtlsClientKey": notPEM}, []string{"mtlsClientCert"}},
		{"root CA neither PEM nor file", map[string]string{"url": "https://h", "mtlsRootCA": filepath.Join(dir, "missing.pem")}, []string{"mtlsRootCA"}},
		{"root CA file without PEM", map[string]string{"url": "https://h", "mtlsRootCA": notPEM}, []string{"mtlsRootCA"}},
		{"broken PEM", map[string]string{"url": "https://h", "mtlsRootCA": "-----BEGIN CERTIFICATE-----\nnope"}, []string{"mtlsRootCA"}},
		{"bad renegotiation", map[string]string{"url": "https://h", "mtlsRenegotiation": "Always"}, []string{"mtlsRenegotiation"}},
		{
			"everything wrong at once",
			map[string]string{
				"responseTimeout": "x", "maxResponseBodySize": "y", "errorIfNot2XX": "z",
				"securityToken": "t", "mtlsClientCert": notPEM, "mtlsRenegotiation": "w",
			},
			[]string{"errorIfNot2XX", "maxResponseBodySize", "mtlsClientKey", "mtlsRenegotiation", "responseTimeout", "securityTokenHeader", "url"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig(md(tt.props))
			var ce *component.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *component.ConfigError", err)
			}
			if !errors.Is(err, component.ErrInvalidArgument) {
				t.Errorf("err does not wrap ErrInvalidArgument")
			}
			var fields []string
			for _, p := range ce.Problems {
				fields = append(fields, p.Field)
			}
			slices.Sort(fields)
			if !slices.Equal(fields, tt.fields) {
				t.Errorf("fields = %v, want %v (%v)", fields, tt.fields, err)
			}
			// Init reports the same error.
			if err2 := New().Init(t.Context(), md(tt.props)); err2 == nil || err2.Error() != err.Error() {
				t.Errorf("Init err = %v, want %v", err2, err)
			}
		})
	}
}

func TestParseConfigNeverEchoesSecrets(t *testing.T) {
	const secret = "hunter2-very-secret"
	_, err := parseConfig(md(map[string]string{
		"url":            "http://h",
		"securityToken":  secret + "\r\n",
		"mtlsClientCert": secret,
		"mtlsClientKey":  "-----BEGIN PRIVATE KEY-----" + secret,
	}))
	if err == nil {
		t.Fatal("want an error")
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error leaks a secret: %v", err)
	}
}

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"0", 0, false},
		{"-1", -1, false},
		{"1024", 1024, false},
		{"1Ki", 1 << 10, false},
		{"100Mi", 100 << 20, false},
		{"2Gi", 2 << 30, false},
		{"1Ti", 1 << 40, false},
		{"1Ei", 1 << 60, false},
		{"5k", 5000, false},
		{"10M", 10_000_000, false},
		{"3G", 3_000_000_000, false},
		{"8Ei", 0, true},
		{"Mi", 0, true},
		{"10MB", 0, true},
		{"1.5Gi", 0, true},
		{"1e6", 0, true},
		{"100m", 0, true},
		{"ten", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseByteSize(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseByteSize(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}
