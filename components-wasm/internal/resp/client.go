package resp

import (
	"context"
	"errors"
	"net"
	"strconv"
	"time"

	"github.com/wapr-dev/wapr/sdk-guest/hostnet"
)

// Command is one command being built: its arguments in RESP, and how many.
// It is for commands built once (login, scripts) or off the hot path; hot
// paths queue their arguments straight into the client (Client.Queue,
// Client.Start), which allocates nothing.
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
	c.args = appendBulk(c.args, s)
	c.n++
	return c
}

// Bytes appends a binary argument.
func (c *Command) Bytes(b []byte) *Command {
	c.args = appendBulk(c.args, b)
	c.n++
	return c
}

// Int appends an integer argument in decimal.
func (c *Command) Int(i int64) *Command {
	c.args = appendInt(c.args, i)
	c.n++
	return c
}

// Uint appends an unsigned integer argument in decimal.
func (c *Command) Uint(u uint64) *Command {
	var digits [20]byte
	c.args = appendBulk(c.args, strconv.AppendUint(digits[:0], u, 10))
	c.n++
	return c
}

// Reset empties c, keeping its buffer, so a command can be rebuilt per
// call without allocating.
func (c *Command) Reset() *Command {
	c.args, c.n = c.args[:0], 0
	return c
}

// appendBulk appends s as a RESP bulk string.
func appendBulk[S string | []byte](b []byte, s S) []byte {
	b = appendCount(b, '$', len(s))
	b = append(b, s...)
	return append(b, '\r', '\n')
}

// appendCount appends a RESP header: kind, n in decimal, CRLF. Counts
// under 100 (nearly all of them) skip strconv, saving calls that are slow
// in a Go guest.
func appendCount(b []byte, kind byte, n int) []byte {
	switch {
	case n >= 0 && n < 10:
		return append(b, kind, byte('0'+n), '\r', '\n')
	case n >= 10 && n < 100:
		return append(b, kind, byte('0'+n/10), byte('0'+n%10), '\r', '\n')
	}
	b = append(b, kind)
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '\r', '\n')
}

// appendInt appends i in decimal as a RESP bulk string.
func appendInt(b []byte, i int64) []byte {
	var digits [20]byte
	return appendBulk(b, strconv.AppendInt(digits[:0], i, 10))
}

// Client holds one connection to Redis. It serves one call at a time
// (a Wasm instance does), so it has no lock.
//
// Two ways to send commands:
//
//   - Queue (or Start and the Arg methods) then Exec: the commands are
//     written straight into a buffer the client reuses, and the replies
//     are parsed into buffers it reuses too, so a steady stream of calls
//     allocates nothing. The replies are valid only until the next Exec,
//     Do, Pipeline or Connect.
//   - Do and Pipeline with Commands: the replies are copies the caller
//     owns.
type Client struct {
	cfg  Config
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Hello runs right after connecting, in the same round trip as AUTH
	// and SELECT; its replies go to HelloDone.
	Hello     []*Command
	HelloDone func([]Value) error

	conn net.Conn
	r    *reader

	// The queued pipeline: RESP for queued commands, how many, and how
	// many arguments the last Start announced that have not been added.
	w       []byte
	queued  int
	argsDue int

	// The replies of the last round trip: top-level values, the elements
	// of arrays, and the bytes of strings. Values alias vals and data.
	replies []Value
	vals    []Value
	data    []byte
}

// epoch is the origin of the deadlines roundTrip computes.
var epoch = time.Now()

// maxRetained bounds the buffers the client keeps between calls, so one
// huge value does not pin its memory for the life of the instance.
const maxRetained = 1 << 20

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

// Start queues a command of nargs arguments, which the Arg methods add.
func (c *Client) Start(nargs int) {
	if c.argsDue != 0 {
		panic("resp: Start before the previous command's arguments were all added")
	}
	c.w = appendCount(c.w, '*', nargs)
	c.queued++
	c.argsDue = nargs
}

// Arg adds a string argument to the command being queued.
func (c *Client) Arg(s string) {
	c.w = appendBulk(c.w, s)
	c.argsDue--
}

// ArgBytes adds a binary argument.
func (c *Client) ArgBytes(b []byte) {
	c.w = appendBulk(c.w, b)
	c.argsDue--
}

// ArgInt adds an integer argument, in decimal.
func (c *Client) ArgInt(i int64) {
	c.w = appendInt(c.w, i)
	c.argsDue--
}

// Args adds the arguments of cm, encoded once: constant parts of hot
// commands cost one copy this way.
func (c *Client) Args(cm *Command) {
	c.w = append(c.w, cm.args...)
	c.argsDue -= cm.n
}

// Queue queues a command of string arguments.
func (c *Client) Queue(args ...string) {
	c.Start(len(args))
	for _, a := range args {
		c.Arg(a)
	}
}

// QueueCommand queues a built command.
func (c *Client) QueueCommand(cm *Command) {
	c.Start(cm.n)
	c.w = append(c.w, cm.args...)
	c.argsDue = 0
}

// discard drops the queued commands.
func (c *Client) discard() {
	c.w, c.queued, c.argsDue = c.w[:0], 0, 0
	if cap(c.w) > maxRetained {
		c.w = nil
	}
}

// Exec sends the queued commands in one write and reads one reply per
// command; error replies are returned as values (check each with Err). The
// replies and their bytes belong to the client and stay valid until the
// next Exec, Do, Pipeline or Connect. block is how long the server may hold
// the replies (XREADGROUP BLOCK), added to the read deadline. When a
// connection kept from an earlier call turns out dead (the server restarted
// or dropped it) the commands are sent once more on a new connection, as
// go-redis retries; a write whose reply was lost may thus be applied twice,
// which guarded writes report as an ETag mismatch.
func (c *Client) Exec(ctx context.Context, block time.Duration) ([]Value, error) {
	defer c.discard()
	if c.argsDue != 0 {
		return nil, errors.New("resp: a queued command lacks arguments")
	}
	reused := c.conn != nil
	if !reused {
		if err := c.Connect(ctx); err != nil {
			return nil, err
		}
	}
	replies, err := c.roundTrip(ctx, c.w, c.queued, block)
	if err != nil && reused && ctx.Err() == nil && !IsTimeout(err) {
		if err = c.Connect(ctx); err != nil {
			return nil, err
		}
		replies, err = c.roundTrip(ctx, c.w, c.queued, block)
	}
	return replies, err
}

// Do runs one command and returns its reply, which the caller owns; an
// error reply is returned as an error.
func (c *Client) Do(ctx context.Context, cm *Command) (Value, error) {
	c.QueueCommand(cm)
	replies, err := c.Exec(ctx, 0)
	if err != nil {
		return Value{}, err
	}
	v := replies[0].clone()
	return v, v.Err()
}

// Pipeline is Exec of cmds, with replies the caller owns.
func (c *Client) Pipeline(ctx context.Context, cmds []*Command, block time.Duration) ([]Value, error) {
	for _, cm := range cmds {
		c.QueueCommand(cm)
	}
	replies, err := c.Exec(ctx, block)
	if err != nil {
		return nil, err
	}
	owned := make([]Value, len(replies))
	for i, v := range replies {
		owned[i] = v.clone()
	}
	return owned, nil
}

// Connect dials and logs in, pipelining AUTH, SELECT and the Hello commands.
// It leaves queued commands alone.
func (c *Client) Connect(ctx context.Context) error {
	dctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	conn, err := c.dial(dctx, "tcp", c.cfg.Addr)
	cancel()
	if err != nil {
		return &connError{addr: c.cfg.Addr, err: err}
	}
	c.conn, c.r = conn, newReader(conn, 16<<10)
	var login []*Command
	if c.cfg.Password != "" {
		auth := Cmd("AUTH")
		if c.cfg.Username != "" {
			auth.Str(c.cfg.Username)
		}
		login = append(login, auth.Str(c.cfg.Password))
	}
	if c.cfg.DB != 0 {
		login = append(login, Cmd("SELECT").Int(int64(c.cfg.DB)))
	}
	n := len(login)
	login = append(login, c.Hello...)
	if len(login) == 0 {
		return nil
	}
	var w []byte
	for _, cm := range login {
		w = append(w, '*')
		w = strconv.AppendInt(w, int64(cm.n), 10)
		w = append(w, '\r', '\n')
		w = append(w, cm.args...)
	}
	replies, err := c.roundTrip(ctx, w, len(login), 0)
	if err != nil {
		c.Close()
		return err
	}
	for i, r := range replies[:n] {
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
		if err := c.HelloDone(replies[n:]); err != nil {
			c.Close()
			return err
		}
	}
	return nil
}

// roundTrip writes w, which holds n commands, and reads their replies into
// the client's reply buffers, on the current connection, which it closes on
// any transport failure.
func (c *Client) roundTrip(ctx context.Context, w []byte, n int, block time.Duration) ([]Value, error) {
	// time.Since(epoch) reads one clock where time.Now reads two, and each
	// read is a host call in a Go guest. Only reads get the deadline: a
	// write deadline set just now cannot have passed by the write below,
	// whose wait the host bounds by the call's deadline, and checking it
	// would cost another clock read.
	deadline := epoch.Add(time.Since(epoch) + c.cfg.Timeout + block)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	c.conn.SetReadDeadline(deadline)
	if _, err := c.conn.Write(w); err != nil {
		c.Close()
		return nil, &connError{addr: c.cfg.Addr, err: err}
	}
	c.resetReplies()
	for range n {
		v, err := c.readValue(0)
		if err != nil {
			c.Close()
			return nil, &connError{addr: c.cfg.Addr, err: err}
		}
		c.replies = append(c.replies, v)
	}
	return c.replies, nil
}

// resetReplies empties the reply buffers for the next round trip, dropping
// any grown past maxRetained.
func (c *Client) resetReplies() {
	if cap(c.data) > maxRetained {
		c.data = nil
	}
	if cap(c.vals) > maxRetained/64 {
		c.vals = nil
	}
	c.replies, c.vals, c.data = c.replies[:0], c.vals[:0], c.data[:0]
}
