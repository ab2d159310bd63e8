// Package resp is a minimal RESP2 client for the Wasm Redis components
// (components-wasm/state-redis and components-wasm/pubsub-redis): one
// connection, pipelining, reconnect on the next call after a failure. It
// dials through the host (sdk-guest/hostnet), so it imports only sdk-guest
// and the standard library.
package resp

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	guest "github.com/wapr-dev/wapr/sdk-guest"
	"github.com/wapr-dev/wapr/sdk-guest/hostnet"
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
	Str   []byte // '+', '-', '$' (owned by the value)
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

// Command is one command being built: its arguments in RESP, and how many.
type Command struct {
	args []byte
	n    int
}

// Cmd starts a command from string arguments.
func Cmd(args ...string) *Command {
	c := &Command{}
	for _, a := range args {
		c.Str(a)
	}
	return c
}

// Str appends a string argument.
func (c *Command) Str(s string) *Command {
	c.args = append(c.args, '$')
	c.args = strconv.AppendInt(c.args, int64(len(s)), 10)
	c.args = append(c.args, '\r', '\n')
	c.args = append(c.args, s...)
	c.args = append(c.args, '\r', '\n')
	c.n++
	return c
}

// Bytes appends a binary argument.
func (c *Command) Bytes(b []byte) *Command {
	c.args = append(c.args, '$')
	c.args = strconv.AppendInt(c.args, int64(len(b)), 10)
	c.args = append(c.args, '\r', '\n')
	c.args = append(c.args, b...)
	c.args = append(c.args, '\r', '\n')
	c.n++
	return c
}

// Int appends an integer argument in decimal.
func (c *Command) Int(i int64) *Command { return c.Str(strconv.FormatInt(i, 10)) }

// Client holds one connection to Redis. It serves one call at a time
// (a Wasm instance does), so it has no lock.
type Client struct {
	cfg  Config
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Hello runs right after connecting, in the same round trip as AUTH
	// and SELECT; its replies go to HelloDone.
	Hello     []*Command
	HelloDone func([]Value) error

	conn net.Conn
	r    *bufio.Reader
	w    []byte
}

// NewClient returns a client for cfg; it dials on first use.
func NewClient(cfg Config) *Client {
	c := &Client{cfg: cfg, dial: hostnet.Dial}
	if cfg.TLS {
		c.dial = hostnet.DialTLS
	}
	return c
}

// Close drops the connection; the next command dials again.
func (c *Client) Close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn, c.r = nil, nil
	}
}

// Connect dials and logs in, pipelining AUTH, SELECT and the Hello commands.
func (c *Client) Connect(ctx context.Context) error {
	dctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	conn, err := c.dial(dctx, "tcp", c.cfg.Addr)
	cancel()
	if err != nil {
		return &connError{addr: c.cfg.Addr, err: err}
	}
	c.conn, c.r = conn, bufio.NewReaderSize(conn, 16<<10)
	var cmds []*Command
	if c.cfg.Password != "" {
		auth := Cmd("AUTH")
		if c.cfg.Username != "" {
			auth.Str(c.cfg.Username)
		}
		cmds = append(cmds, auth.Str(c.cfg.Password))
	}
	if c.cfg.DB != 0 {
		cmds = append(cmds, Cmd("SELECT").Int(int64(c.cfg.DB)))
	}
	login := len(cmds)
	cmds = append(cmds, c.Hello...)
	if len(cmds) == 0 {
		return nil
	}
	replies, err := c.roundTrip(ctx, cmds, 0)
	if err != nil {
		c.Close()
		return err
	}
	for i, r := range replies[:login] {
		if err := r.Err(); err != nil {
			c.Close()
			what := "SELECT"
			if i == 0 && c.cfg.Password != "" {
				what = "AUTH (check redisUsername and redisPassword)"
			}
			return errors.New("redis at " + c.cfg.Addr + " refused " + what + ": " + err.Error())
		}
	}
	if c.HelloDone != nil {
		if err := c.HelloDone(replies[login:]); err != nil {
			c.Close()
			return err
		}
	}
	return nil
}

// Do runs one command and returns its reply; an error reply is returned as
// an error.
func (c *Client) Do(ctx context.Context, cm *Command) (Value, error) {
	replies, err := c.Pipeline(ctx, []*Command{cm}, 0)
	if err != nil {
		return Value{}, err
	}
	return replies[0], replies[0].Err()
}

// Pipeline sends cmds in one write and reads one reply per command; error
// replies are returned as values (check each with Err). block is how long
// the server may hold the replies (XREADGROUP BLOCK), added to the read
// deadline. When a connection kept from an earlier call turns out dead
// (the server restarted or dropped it) the commands are sent once more on a
// new connection, as go-redis retries; a write whose reply was lost may
// thus be applied twice, which guarded writes report as an ETag mismatch.
func (c *Client) Pipeline(ctx context.Context, cmds []*Command, block time.Duration) ([]Value, error) {
	reused := c.conn != nil
	if !reused {
		if err := c.Connect(ctx); err != nil {
			return nil, err
		}
	}
	replies, err := c.roundTrip(ctx, cmds, block)
	if err != nil && reused && ctx.Err() == nil && !IsTimeout(err) {
		if err = c.Connect(ctx); err != nil {
			return nil, err
		}
		replies, err = c.roundTrip(ctx, cmds, block)
	}
	return replies, err
}

// roundTrip writes cmds and reads their replies on the current connection,
// which it closes on any transport failure.
func (c *Client) roundTrip(ctx context.Context, cmds []*Command, block time.Duration) ([]Value, error) {
	deadline := time.Now().Add(c.cfg.Timeout + block)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	c.conn.SetDeadline(deadline)
	c.w = c.w[:0]
	for _, cm := range cmds {
		c.w = append(c.w, '*')
		c.w = strconv.AppendInt(c.w, int64(cm.n), 10)
		c.w = append(c.w, '\r', '\n')
		c.w = append(c.w, cm.args...)
	}
	if _, err := c.conn.Write(c.w); err != nil {
		c.Close()
		return nil, &connError{addr: c.cfg.Addr, err: err}
	}
	if cap(c.w) > 1<<20 {
		c.w = nil // do not pin a huge write buffer
	}
	replies := make([]Value, len(cmds))
	for i := range replies {
		v, err := readValue(c.r, 0)
		if err != nil {
			c.Close()
			return nil, &connError{addr: c.cfg.Addr, err: err}
		}
		replies[i] = v
	}
	return replies, nil
}

// errProtocol is a reply that does not parse as RESP2.
var errProtocol = errors.New("malformed RESP reply")

// maxDepth bounds nested arrays; maxBulk bounds one bulk string (Redis's
// own limit is 512 MB).
const (
	maxDepth = 16
	maxBulk  = 512 << 20
)

// readValue reads one reply.
func readValue(r *bufio.Reader, depth int) (Value, error) {
	line, err := readLine(r)
	if err != nil {
		return Value{}, err
	}
	if len(line) == 0 {
		return Value{}, errProtocol
	}
	v := Value{Kind: line[0]}
	switch v.Kind {
	case '+', '-':
		v.Str = append([]byte(nil), line[1:]...)
	case ':':
		if v.Num, err = strconv.ParseInt(string(line[1:]), 10, 64); err != nil {
			return Value{}, errProtocol
		}
	case '$':
		n, err := strconv.Atoi(string(line[1:]))
		if err != nil || n < -1 || n > maxBulk {
			return Value{}, errProtocol
		}
		if n == -1 {
			v.IsNil = true
			break
		}
		v.Str = make([]byte, n+2)
		if _, err := io.ReadFull(r, v.Str); err != nil {
			return Value{}, err
		}
		if v.Str[n] != '\r' || v.Str[n+1] != '\n' {
			return Value{}, errProtocol
		}
		v.Str = v.Str[:n]
	case '*':
		n, err := strconv.Atoi(string(line[1:]))
		if err != nil || n < -1 || depth >= maxDepth {
			return Value{}, errProtocol
		}
		if n == -1 {
			v.IsNil = true
			break
		}
		v.Arr = make([]Value, 0, min(n, 1024))
		for range n {
			e, err := readValue(r, depth+1)
			if err != nil {
				return Value{}, err
			}
			v.Arr = append(v.Arr, e)
		}
	default:
		return Value{}, errProtocol
	}
	return v, nil
}

// readLine returns a line without its CRLF; the slice is valid until the
// next read.
func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return nil, errProtocol
	}
	if err != nil {
		return nil, err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, errProtocol
	}
	return line[:len(line)-2], nil
}

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
