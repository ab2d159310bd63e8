package main

// A minimal RESP2 client: one connection, pipelining, reconnect on the next
// call after a failure. The same file is in components-wasm/state-redis and
// components-wasm/pubsub-redis (a component may import only sdk-guest and
// abi, so the two cannot share a package); TestRESPFilesIdentical keeps
// the copies equal.

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

// redisConfig is how to reach and log in to one Redis server.
type redisConfig struct {
	addr        string // host:port
	tls         bool   // the host runs TLS (wapr_sock_v1 SockTLS)
	username    string
	password    string
	db          int
	dialTimeout time.Duration
	timeout     time.Duration // per round trip, beyond any server-side BLOCK
}

// value is one RESP2 reply.
type value struct {
	kind  byte   // '+' simple string, '-' error, ':' integer, '$' bulk string, '*' array
	str   []byte // '+', '-', '$' (owned by the value)
	num   int64  // ':'
	arr   []value
	isNil bool // $-1 or *-1
}

// err returns the server error this reply carries, if any.
func (v value) err() error {
	if v.kind == '-' {
		return &redisError{msg: string(v.str)}
	}
	return nil
}

// text returns a bulk or simple string as a Go string.
func (v value) text() string { return string(v.str) }

// redisError is an error reply from the server ("ERR …", "NOSCRIPT …").
type redisError struct{ msg string }

func (e *redisError) Error() string { return "redis: " + e.msg }

// hasPrefix reports whether the reply's first word is p (e.g. "NOSCRIPT").
func (e *redisError) hasPrefix(p string) bool {
	return strings.HasPrefix(e.msg, p) && (len(e.msg) == len(p) || e.msg[len(p)] == ' ')
}

// isRedisError reports whether err is an error reply starting with prefix.
func isRedisError(err error, prefix string) bool {
	re, ok := errors.AsType[*redisError](err)
	return ok && re.hasPrefix(prefix)
}

// connError is a transport failure: the connection is gone and the outcome
// of the commands in flight is unknown.
type connError struct {
	addr string
	err  error
}

func (e *connError) Error() string { return "redis at " + e.addr + ": " + e.err.Error() }
func (e *connError) Unwrap() error { return e.err }

// command is one command being built: its arguments in RESP, and how many.
type command struct {
	args []byte
	n    int
}

// cmd starts a command from string arguments.
func cmd(args ...string) *command {
	c := &command{}
	for _, a := range args {
		c.str(a)
	}
	return c
}

func (c *command) str(s string) *command {
	c.args = append(c.args, '$')
	c.args = strconv.AppendInt(c.args, int64(len(s)), 10)
	c.args = append(c.args, '\r', '\n')
	c.args = append(c.args, s...)
	c.args = append(c.args, '\r', '\n')
	c.n++
	return c
}

func (c *command) bytes(b []byte) *command {
	c.args = append(c.args, '$')
	c.args = strconv.AppendInt(c.args, int64(len(b)), 10)
	c.args = append(c.args, '\r', '\n')
	c.args = append(c.args, b...)
	c.args = append(c.args, '\r', '\n')
	c.n++
	return c
}

func (c *command) int(i int64) *command { return c.str(strconv.FormatInt(i, 10)) }

// redisClient holds one connection to Redis. It serves one call at a time
// (a Wasm instance does), so it has no lock.
type redisClient struct {
	cfg  redisConfig
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// hello runs right after connecting, in the same round trip as AUTH
	// and SELECT; its replies go to helloDone.
	hello     []*command
	helloDone func([]value) error

	conn net.Conn
	r    *bufio.Reader
	w    []byte
}

func newRedisClient(cfg redisConfig) *redisClient {
	c := &redisClient{cfg: cfg, dial: hostnet.Dial}
	if cfg.tls {
		c.dial = hostnet.DialTLS
	}
	return c
}

// close drops the connection; the next command dials again.
func (c *redisClient) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn, c.r = nil, nil
	}
}

// connect dials and logs in, pipelining AUTH, SELECT and the hello commands.
func (c *redisClient) connect(ctx context.Context) error {
	dctx, cancel := context.WithTimeout(ctx, c.cfg.dialTimeout)
	conn, err := c.dial(dctx, "tcp", c.cfg.addr)
	cancel()
	if err != nil {
		return &connError{addr: c.cfg.addr, err: err}
	}
	c.conn, c.r = conn, bufio.NewReaderSize(conn, 16<<10)
	var cmds []*command
	if c.cfg.password != "" {
		auth := cmd("AUTH")
		if c.cfg.username != "" {
			auth.str(c.cfg.username)
		}
		cmds = append(cmds, auth.str(c.cfg.password))
	}
	if c.cfg.db != 0 {
		cmds = append(cmds, cmd("SELECT").int(int64(c.cfg.db)))
	}
	login := len(cmds)
	cmds = append(cmds, c.hello...)
	if len(cmds) == 0 {
		return nil
	}
	replies, err := c.roundTrip(ctx, cmds, 0)
	if err != nil {
		c.close()
		return err
	}
	for i, r := range replies[:login] {
		if err := r.err(); err != nil {
			c.close()
			what := "SELECT"
			if i == 0 && c.cfg.password != "" {
				what = "AUTH (check redisUsername and redisPassword)"
			}
			return errors.New("redis at " + c.cfg.addr + " refused " + what + ": " + err.Error())
		}
	}
	if c.helloDone != nil {
		if err := c.helloDone(replies[login:]); err != nil {
			c.close()
			return err
		}
	}
	return nil
}

// do runs one command and returns its reply; an error reply is returned as
// an error.
func (c *redisClient) do(ctx context.Context, cm *command) (value, error) {
	replies, err := c.pipeline(ctx, []*command{cm}, 0)
	if err != nil {
		return value{}, err
	}
	return replies[0], replies[0].err()
}

// pipeline sends cmds in one write and reads one reply per command; error
// replies are returned as values (check each with err). block is how long
// the server may hold the replies (XREADGROUP BLOCK), added to the read
// deadline. When a connection kept from an earlier call turns out dead
// (the server restarted or dropped it) the commands are sent once more on a
// new connection, as go-redis retries; a write whose reply was lost may
// thus be applied twice, which guarded writes report as an ETag mismatch.
func (c *redisClient) pipeline(ctx context.Context, cmds []*command, block time.Duration) ([]value, error) {
	reused := c.conn != nil
	if !reused {
		if err := c.connect(ctx); err != nil {
			return nil, err
		}
	}
	replies, err := c.roundTrip(ctx, cmds, block)
	if err != nil && reused && ctx.Err() == nil && !isTimeout(err) {
		if err = c.connect(ctx); err != nil {
			return nil, err
		}
		replies, err = c.roundTrip(ctx, cmds, block)
	}
	return replies, err
}

// roundTrip writes cmds and reads their replies on the current connection,
// which it closes on any transport failure.
func (c *redisClient) roundTrip(ctx context.Context, cmds []*command, block time.Duration) ([]value, error) {
	deadline := time.Now().Add(c.cfg.timeout + block)
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
		c.close()
		return nil, &connError{addr: c.cfg.addr, err: err}
	}
	if cap(c.w) > 1<<20 {
		c.w = nil // do not pin a huge write buffer
	}
	replies := make([]value, len(cmds))
	for i := range replies {
		v, err := readValue(c.r, 0)
		if err != nil {
			c.close()
			return nil, &connError{addr: c.cfg.addr, err: err}
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
func readValue(r *bufio.Reader, depth int) (value, error) {
	line, err := readLine(r)
	if err != nil {
		return value{}, err
	}
	if len(line) == 0 {
		return value{}, errProtocol
	}
	v := value{kind: line[0]}
	switch v.kind {
	case '+', '-':
		v.str = append([]byte(nil), line[1:]...)
	case ':':
		if v.num, err = strconv.ParseInt(string(line[1:]), 10, 64); err != nil {
			return value{}, errProtocol
		}
	case '$':
		n, err := strconv.Atoi(string(line[1:]))
		if err != nil || n < -1 || n > maxBulk {
			return value{}, errProtocol
		}
		if n == -1 {
			v.isNil = true
			break
		}
		v.str = make([]byte, n+2)
		if _, err := io.ReadFull(r, v.str); err != nil {
			return value{}, err
		}
		if v.str[n] != '\r' || v.str[n+1] != '\n' {
			return value{}, errProtocol
		}
		v.str = v.str[:n]
	case '*':
		n, err := strconv.Atoi(string(line[1:]))
		if err != nil || n < -1 || depth >= maxDepth {
			return value{}, errProtocol
		}
		if n == -1 {
			v.isNil = true
			break
		}
		v.arr = make([]value, 0, min(n, 1024))
		for range n {
			e, err := readValue(r, depth+1)
			if err != nil {
				return value{}, err
			}
			v.arr = append(v.arr, e)
		}
	default:
		return value{}, errProtocol
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

// isTimeout reports a deadline error.
func isTimeout(err error) bool {
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

// parseRedisConfig reads the connection keys Dapr's Redis components share
// (redisHost, redisPort, redisUsername, redisPassword, redisDB, enableTLS,
// dialTimeout, readTimeout) and reports every problem at once. problems
// collects them for the caller, which adds its own keys' problems before
// failing.
func parseRedisConfig(md guest.Metadata, problems *[]string) redisConfig {
	fail := func(err error) {
		if err != nil {
			*problems = append(*problems, err.Error())
		}
	}
	var c redisConfig
	var err error
	c.addr, err = redisAddr(md.Get("redisHost"), md.Get("redisPort"))
	fail(err)
	c.username = md.Get("redisUsername")
	c.password = md.Get("redisPassword")
	c.db, err = md.Int("redisDB", 0)
	fail(err)
	if c.db < 0 {
		fail(errors.New("metadata redisDB must not be negative"))
	}
	c.tls, err = md.Bool("enableTLS", false)
	fail(err)
	c.dialTimeout, err = md.Duration("dialTimeout", defaultDialTimeout, time.Millisecond)
	fail(err)
	c.timeout, err = md.Duration("readTimeout", defaultReadTimeout, time.Millisecond)
	fail(err)
	if c.dialTimeout <= 0 {
		c.dialTimeout = defaultDialTimeout
	}
	if c.timeout <= 0 {
		c.timeout = defaultReadTimeout
	}
	if t := strings.ToLower(md.String("redisType", "node")); t != "node" {
		fail(errors.New("metadata redisType " + strconv.Quote(t) + " is not supported; this component talks to a single Redis server (node)"))
	}
	if on, _ := md.Bool("failover", false); on {
		fail(errors.New("metadata failover (Redis Sentinel) is not supported by this component"))
	}
	return c
}

// configError turns the collected problems into the Init error.
func configError(problems []string) error {
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
