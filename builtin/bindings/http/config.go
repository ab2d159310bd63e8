package httpbinding

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"math"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/wapr-dev/wapr/host/component"
)

// Metadata keys, as Dapr spells them. ConfigReader matches them
// case-insensitively, so Dapr's documented "MTLSRootCA" works too.
const (
	keyURL                 = "url"
	keyResponseTimeout     = "responseTimeout"
	keyMaxResponseBodySize = "maxResponseBodySize"
	keyErrorIfNot2XX       = "errorIfNot2XX"
	keySecurityToken       = "securityToken"
	keySecurityTokenHeader = "securityTokenHeader"
	keyMTLSRootCA          = "mtlsRootCA"
	keyMTLSClientCert      = "mtlsClientCert"
	keyMTLSClientKey       = "mtlsClientKey"
	keyMTLSRenegotiation   = "mtlsRenegotiation"
)

// Defaults for the keys a component leaves unset.
const (
	// DefaultResponseTimeout bounds a call when the component sets no
	// responseTimeout. Dapr waits forever by default; wapr keeps every call
	// bounded. A shorter deadline on the caller's context still wins.
	DefaultResponseTimeout = 30 * time.Second
	// DefaultMaxResponseBodySize is the largest response body read when the
	// component sets no maxResponseBodySize (100 MiB, as Dapr).
	DefaultMaxResponseBodySize int64 = 100 << 20
)

// config is the parsed component metadata. It is immutable after parseConfig.
type config struct {
	url  *url.URL // absolute http or https URL
	base string   // url without query, fragment and trailing slashes, for joining paths

	responseTimeout     time.Duration // > 0
	maxResponseBodySize int64         // <= 0 means no limit
	errorIfNot2XX       bool

	securityToken       string // both set or both empty
	securityTokenHeader string

	tls *tls.Config // nil: the Transport's default TLS settings
}

// parseConfig reads every metadata key, applies the defaults and reports
// every problem at once as a *component.ConfigError. It may read the mTLS
// files named in the metadata.
func parseConfig(md component.Metadata) (config, error) {
	r := component.NewConfigReader(md)
	var c config

	if raw := r.Required(keyURL); raw != "" {
		u, problem := parseBaseURL(raw)
		if problem != "" {
			r.Fail(keyURL, problem)
		} else {
			c.url = u
			c.base = baseForJoin(raw)
		}
	}

	c.responseTimeout = r.Duration(keyResponseTimeout, DefaultResponseTimeout, time.Second)
	if c.responseTimeout <= 0 {
		r.Fail(keyResponseTimeout, "must be positive, got "+c.responseTimeout.String())
		c.responseTimeout = DefaultResponseTimeout
	}

	c.maxResponseBodySize = DefaultMaxResponseBodySize
	if v := r.String(keyMaxResponseBodySize, ""); v != "" {
		n, err := parseByteSize(v)
		if err != nil {
			r.Fail(keyMaxResponseBodySize, err.Error())
		} else {
			c.maxResponseBodySize = n
		}
	}

	c.errorIfNot2XX = r.Bool(keyErrorIfNot2XX, true)

	c.securityToken = r.String(keySecurityToken, "")
	c.securityTokenHeader = r.String(keySecurityTokenHeader, "")
	switch {
	case c.securityToken != "" && c.securityTokenHeader == "":
		r.Fail(keySecurityTokenHeader, "is required when securityToken is set")
	case c.securityToken == "" && c.securityTokenHeader != "":
		r.Fail(keySecurityToken, "is required when securityTokenHeader is set")
	case c.securityToken != "":
		if !validHeaderName(c.securityTokenHeader) {
			r.Fail(keySecurityTokenHeader, "must be a single HTTP header name such as Authorization, got "+strconv.Quote(c.securityTokenHeader))
		}
		if !validHeaderValue(c.securityToken) {
			// Never echo the token itself.
			r.Fail(keySecurityToken, "must not contain control characters such as line breaks")
		}
	}

	c.tls = parseTLS(r)

	if err := r.Err(); err != nil {
		return config{}, err
	}
	return c, nil
}

// parseBaseURL checks that raw is an absolute http or https URL. It returns
// a problem description rather than an error so the caller can record it.
func parseBaseURL(raw string) (*url.URL, string) {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, "must be an absolute http or https URL: " + err.Error()
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, "must be an absolute http or https URL such as http://host:8080/api, got scheme " + strconv.Quote(u.Scheme)
	}
	if u.Host == "" {
		return nil, "must be an absolute http or https URL such as http://host:8080/api: the host is missing"
	}
	return u, ""
}

// baseForJoin strips the fragment, the query and trailing slashes from raw,
// leaving the prefix a request path is appended to.
func baseForJoin(raw string) string {
	raw, _, _ = strings.Cut(raw, "#")
	raw, _, _ = strings.Cut(raw, "?")
	return strings.TrimRight(raw, "/")
}

// parseByteSize reads a size as Dapr's maxResponseBodySize accepts it (a
// Kubernetes resource quantity): a whole number of bytes with an optional
// binary (Ki, Mi, Gi, Ti, Pi, Ei) or decimal (k, M, G, T, P, E) suffix.
// Fractions and exponents are not accepted. A value <= 0 means no limit.
func parseByteSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{
		// Two-letter suffixes first so "Mi" is not read as "M".
		{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40}, {"Pi", 1 << 50}, {"Ei", 1 << 60},
		{"k", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}, {"P", 1e15}, {"E", 1e18},
	}
	num, mult := s, int64(1)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = rest, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return 0, errors.New("must be a number of bytes, optionally with a suffix such as Ki, Mi, Gi (1024-based) or k, M, G (1000-based), got " + strconv.Quote(s))
	}
	if n > math.MaxInt64/mult || n < math.MinInt64/mult {
		return 0, errors.New("is too large: " + strconv.Quote(s))
	}
	return n * mult, nil
}

// parseTLS builds the TLS settings from the mTLS keys, recording problems on
// r. It returns nil when none of the keys is set.
func parseTLS(r *component.ConfigReader) *tls.Config {
	rootCA := r.String(keyMTLSRootCA, "")
	clientCert := r.String(keyMTLSClientCert, "")
	clientKey := r.String(keyMTLSClientKey, "")
	renegotiation := r.String(keyMTLSRenegotiation, "")
	if rootCA == "" && clientCert == "" && clientKey == "" && renegotiation == "" {
		return nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	ok := true

	if rootCA != "" {
		if b, problem := readPEM(rootCA); problem != "" {
			r.Fail(keyMTLSRootCA, problem)
			ok = false
		} else {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(b) {
				r.Fail(keyMTLSRootCA, "holds no usable PEM certificate")
				ok = false
			}
			cfg.RootCAs = pool
		}
	}

	switch {
	case clientCert != "" && clientKey == "":
		r.Fail(keyMTLSClientKey, "is required when mtlsClientCert is set")
		ok = false
	case clientCert == "" && clientKey != "":
		r.Fail(keyMTLSClientCert, "is required when mtlsClientKey is set")
		ok = false
	case clientCert != "":
		certPEM, certProblem := readPEM(clientCert)
		if certProblem != "" {
			r.Fail(keyMTLSClientCert, certProblem)
			ok = false
		}
		keyPEM, keyProblem := readPEM(clientKey)
		if keyProblem != "" {
			r.Fail(keyMTLSClientKey, keyProblem)
			ok = false
		}
		if certProblem == "" && keyProblem == "" {
			pair, err := tls.X509KeyPair(certPEM, keyPEM)
			if err != nil {
				r.Fail(keyMTLSClientCert, "and mtlsClientKey do not form a usable key pair: "+err.Error())
				ok = false
			} else {
				cfg.Certificates = []tls.Certificate{pair}
			}
		}
	}

	switch renegotiation {
	case "":
	case "RenegotiateNever":
		cfg.Renegotiation = tls.RenegotiateNever
	case "RenegotiateOnceAsClient":
		cfg.Renegotiation = tls.RenegotiateOnceAsClient
	case "RenegotiateFreelyAsClient":
		cfg.Renegotiation = tls.RenegotiateFreelyAsClient
	default:
		r.Fail(keyMTLSRenegotiation, "must be RenegotiateNever, RenegotiateOnceAsClient or RenegotiateFreelyAsClient, got "+strconv.Quote(renegotiation))
		ok = false
	}

	if !ok {
		return nil
	}
	return cfg
}

// readPEM returns v itself when it holds a PEM block, else the content of the
// file v names (as Dapr does). Problems never quote v: it may be a key.
func readPEM(v string) ([]byte, string) {
	if block, _ := pem.Decode([]byte(v)); block != nil {
		return []byte(v), ""
	}
	if strings.Contains(v, "-----BEGIN") {
		return nil, "looks like PEM content but does not decode"
	}
	b, err := os.ReadFile(v)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, "is neither PEM content nor a readable file: " + err.Error()
	}
	if block, _ := pem.Decode(b); block == nil {
		return nil, "names a file that holds no PEM content"
	}
	return b, ""
}

// validHeaderName reports whether s is an HTTP field name (an RFC 9110 token).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHeaderValue reports whether s may be sent as an HTTP field value: no
// control characters other than horizontal tab.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
