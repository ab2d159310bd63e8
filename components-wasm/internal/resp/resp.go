// Package resp is a minimal RESP2 client for the Wasm Redis components
// (components-wasm/state-redis and components-wasm/pubsub-redis): one
// connection, pipelining, reconnect on the next call after a failure. It
// dials through the host (sdk-guest/hostnet), so it imports only sdk-guest
// and the standard library.
package resp

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"time"

	guest "github.com/wapr-dev/wapr/sdk-guest"
)

// Config is how to reach and log in to one Redis server.
type Config struct {
	Addr        string // host:port
	TLS         bool   // the host runs TLS (wapr_sock_v1 SockTLS)
	Username    string
	Password    string
	DB          int
	DialTimeout time.Duration
	Timeout     time.Duration // per round trip, beyond any server-side BLOCK
}

// Value is one RESP2 reply.
type Value struct {
	Kind  byte   // '+' simple string, '-' error, ':' integer, '$' bulk string, '*' array
	Str   []byte // '+', '-', '$' (see Client for who owns it)
	Num   int64  // ':'
	Arr   []Value
	IsNil bool // $-1 or *-1
}

// Err returns the server error this reply carries, if any.
func (v Value) Err() error {
	if v.Kind == '-' {
		return &Error{msg: string(v.Str)}
	}
	return nil
}

// Text returns a bulk or simple string as a Go string.
func (v Value) Text() string { return string(v.Str) }

// String renders the reply for messages and tests: "nil", ":42", "$bulk",
// "+simple", "-error" or "[…]" for an array.
func (v Value) String() string {
	switch {
	case v.IsNil:
		return "nil"
	case v.Kind == ':':
		return ":" + strconv.FormatInt(v.Num, 10)
	case v.Kind == '*':
		parts := make([]string, len(v.Arr))
		for i, e := range v.Arr {
			parts[i] = e.String()
		}
		return "[" + strings.Join(parts, " ") + "]"
	case v.Kind == '$':
		return "$" + string(v.Str)
	}
	return string(v.Kind) + string(v.Str)
}

// Error is an error reply from the server ("ERR …", "NOSCRIPT …").
type Error struct{ msg string }

func (e *Error) Error() string { return "redis: " + e.msg }

// HasPrefix reports whether the reply's first word is p (e.g. "NOSCRIPT").
func (e *Error) HasPrefix(p string) bool {
	return strings.HasPrefix(e.msg, p) && (len(e.msg) == len(p) || e.msg[len(p)] == ' ')
}

// IsError reports whether err is an error reply starting with prefix.
func IsError(err error, prefix string) bool {
	re, ok := errors.AsType[*Error](err)
	return ok && re.HasPrefix(prefix)
}

// connError is a transport failure: the connection is gone and the outcome
// of the commands in flight is unknown.
type connError struct {
	addr string
	err  error
}

func (e *connError) Error() string { return "redis at " + e.addr + ": " + e.err.Error() }
func (e *connError) Unwrap() error { return e.err }

// IsTimeout reports a deadline error.
func IsTimeout(err error) bool {
	t, ok := errors.AsType[interface {
		error
		Timeout() bool
	}](err)
	return ok && t.Timeout()
}

// Connection defaults, as Dapr documents them for its Redis components.
const (
	defaultDialTimeout = 5 * time.Second
	defaultReadTimeout = 3 * time.Second
)

// ParseConfig reads the connection keys Dapr's Redis components share
// (redisHost, redisPort, redisUsername, redisPassword, redisDB, enableTLS,
// dialTimeout, readTimeout) and reports every problem at once. problems
// collects them for the caller, which adds its own keys' problems before
// failing.
func ParseConfig(md guest.Metadata, problems *[]string) Config {
	fail := func(err error) {
		if err != nil {
			*problems = append(*problems, err.Error())
		}
	}
	var c Config
	var err error
	c.Addr, err = redisAddr(md.Get("redisHost"), md.Get("redisPort"))
	fail(err)
	c.Username = md.Get("redisUsername")
	c.Password = md.Get("redisPassword")
	c.DB, err = md.Int("redisDB", 0)
	fail(err)
	if c.DB < 0 {
		fail(errors.New("metadata redisDB must not be negative"))
	}
	c.TLS, err = md.Bool("enableTLS", false)
	fail(err)
	c.DialTimeout, err = md.Duration("dialTimeout", defaultDialTimeout, time.Millisecond)
	fail(err)
	c.Timeout, err = md.Duration("readTimeout", defaultReadTimeout, time.Millisecond)
	fail(err)
	if c.DialTimeout <= 0 {
		c.DialTimeout = defaultDialTimeout
	}
	if c.Timeout <= 0 {
		c.Timeout = defaultReadTimeout
	}
	if t := strings.ToLower(md.String("redisType", "node")); t != "node" {
		fail(errors.New("metadata redisType " + strconv.Quote(t) + " is not supported; this component talks to a single Redis server (node)"))
	}
	if on, _ := md.Bool("failover", false); on {
		fail(errors.New("metadata failover (Redis Sentinel) is not supported by this component"))
	}
	return c
}

// ConfigError turns the collected problems into the Init error.
func ConfigError(problems []string) error {
	if len(problems) == 0 {
		return nil
	}
	return guest.InvalidArgument(strings.Join(problems, "; "))
}

// redisAddr returns host as host:port, adding port (or 6379) when host has
// none, as Dapr reads redisHost and redisPort.
func redisAddr(host, port string) (string, error) {
	if host == "" {
		return "", errors.New("metadata redisHost is required")
	}
	if strings.Contains(host, ",") {
		return "", errors.New("metadata redisHost lists several addresses (Redis Cluster or Sentinel), which this component does not support")
	}
	h, p, err := net.SplitHostPort(host)
	if err != nil {
		h, p = strings.Trim(host, "[]"), port
		if p == "" {
			p = "6379"
		}
	} else if port != "" && port != p {
		return "", errors.New("metadata redisPort is " + port + " but redisHost already names port " + p)
	}
	if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
		return "", errors.New("metadata redisHost has an invalid port " + strconv.Quote(p))
	}
	if h == "" {
		return "", errors.New("metadata redisHost has no host name")
	}
	return net.JoinHostPort(h, p), nil
}
