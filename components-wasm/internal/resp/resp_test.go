package resp

import (
	"io"
	"strings"
	"testing"
)

func TestReadValue(t *testing.T) {
	tests := []struct {
		in   string
		want string // rendering of the value; "error" when parsing fails
	}{
		{"+OK\r\n", "+OK"},
		{"-ERR bad\r\n", "-ERR bad"},
		{":-42\r\n", ":-42"},
		{"$5\r\nhe\r\no\r\n", "$he\r\no"},
		{"$0\r\n\r\n", "$"},
		{"$-1\r\n", "nil"},
		{"*2\r\n$1\r\na\r\n*1\r\n:1\r\n", "[$a [:1]]"},
		{"*-1\r\n", "nil"},
		{"*0\r\n", "[]"},
		{"?\r\n", "error"},
		{"$5\r\nab\r\n", "error"},
		{"$2\r\nabcd\r\n", "error"},
		{":x\r\n", "error"},
		{"+OK\n", "error"},
		{":9223372036854775807\r\n", ":9223372036854775807"},
		{":9223372036854775808\r\n", "error"},
		{":99999999999999999999\r\n", "error"},
		{":-\r\n", "error"},
		{"$-2\r\n", "error"},
		{"*3\r\n$1\r\na\r\n*2\r\n+x\r\n$-1\r\n:7\r\n", "[$a [+x nil] :7]"},
		{strings.Repeat("*1\r\n", maxDepth+2) + ":1\r\n", "error"},
	}
	// A tiny buffer makes every reply cross refills.
	for _, size := range []int{32, 16 << 10} {
		for _, tt := range tests {
			c := &Client{r: newReader(&oneByteReader{s: tt.in}, size)}
			v, err := c.readValue(0)
			got := "error"
			if err == nil {
				got = v.String()
			}
			if got != tt.want {
				t.Errorf("buffer %d: readValue(%q) = %s, want %s", size, tt.in, got, tt.want)
			}
		}
	}
}

// TestRepliesShareBuffers reads several replies into one client's buffers,
// as a pipeline does, and checks that values read earlier survive the
// buffers growing under later ones; then that clone copies them out.
func TestRepliesShareBuffers(t *testing.T) {
	var in strings.Builder
	in.WriteString("*2\r\n$3\r\nabc\r\n+OK\r\n")
	big := strings.Repeat("z", 5000)
	in.WriteString("*600\r\n")
	for range 600 {
		in.WriteString("*1\r\n$" + "4\r\nbulk\r\n")
	}
	in.WriteString("$5000\r\n" + big + "\r\n")
	c := &Client{r: newReader(strings.NewReader(in.String()), 64)}
	var got []Value
	for range 3 {
		v, err := c.readValue(0)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if got[0].String() != "[$abc +OK]" || len(got[1].Arr) != 600 || got[1].Arr[599].String() != "[$bulk]" || string(got[2].Str) != big {
		t.Fatalf("replies %s / %d elements / %d bytes", got[0], len(got[1].Arr), len(got[2].Str))
	}

	// The next round trip reuses the buffers: a value read before is
	// overwritten, its clone is not.
	c = &Client{r: newReader(strings.NewReader("*2\r\n$3\r\nabc\r\n+OK\r\n*2\r\n$3\r\nXYZ\r\n+NO\r\n"), 64)}
	first, err := c.readValue(0)
	if err != nil {
		t.Fatal(err)
	}
	owned := first.clone()
	c.resetReplies()
	if _, err := c.readValue(0); err != nil {
		t.Fatal(err)
	}
	if first.String() != "[$XYZ +NO]" {
		t.Errorf("the second reply did not reuse the buffers: first is now %s", first)
	}
	if owned.String() != "[$abc +OK]" {
		t.Errorf("clone shares the client's buffers: %s", owned)
	}
}

// oneByteReader returns its string one byte per Read, as a slow socket may.
type oneByteReader struct{ s string }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, io.EOF
	}
	p[0], r.s = r.s[0], r.s[1:]
	return 1, nil
}

func TestReaderLineTooLong(t *testing.T) {
	c := &Client{r: newReader(strings.NewReader("+"+strings.Repeat("x", 40)+"\r\n"), 32)}
	if _, err := c.readValue(0); err != errProtocol {
		t.Fatalf("a line longer than the buffer: %v, want errProtocol", err)
	}
	c = &Client{r: newReader(strings.NewReader("$10\r\nabc"), 32)}
	if _, err := c.readValue(0); err != io.ErrUnexpectedEOF {
		t.Fatalf("a bulk string cut short: %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestCommandEncoding(t *testing.T) {
	long := strings.Repeat("v", 123)
	c := Cmd("SET", "k").Bytes([]byte("a\r\nb")).Int(-5).Uint(18446744073709551615).Str(long).Str(strings.Repeat("w", 10))
	want := "$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n$2\r\n-5\r\n$20\r\n18446744073709551615\r\n$123\r\n" + long + "\r\n$10\r\nwwwwwwwwww\r\n"
	if string(c.args) != want || c.n != 7 {
		t.Fatalf("args %q (%d), want %q", c.args, c.n, want)
	}
	// The same arguments queued on a client, partly pre-encoded.
	cl := &Client{}
	cl.Start(8)
	cl.Args(Cmd("SET", "k"))
	cl.ArgBytes([]byte("a\r\nb"))
	cl.ArgInt(-5)
	cl.Arg("18446744073709551615")
	cl.Arg(long)
	cl.Arg(strings.Repeat("w", 10))
	cl.Arg("")
	if want := "*8\r\n" + want + "$0\r\n\r\n"; string(cl.w) != want || cl.argsDue != 0 || cl.queued != 1 {
		t.Fatalf("queued %q (%d due, %d queued), want %q", cl.w, cl.argsDue, cl.queued, want)
	}
}

func TestRedisAddr(t *testing.T) {
	tests := []struct{ host, port, want string }{
		{"redis", "", "redis:6379"},
		{"redis:7000", "", "redis:7000"},
		{"redis", "7001", "redis:7001"},
		{"[::1]", "", "[::1]:6379"},
		{"", "", "error"},
		{"a:1,b:2", "", "error"},
		{"redis:1", "2", "error"},
		{"redis:x", "", "error"},
	}
	for _, tt := range tests {
		got, err := redisAddr(tt.host, tt.port)
		if err != nil {
			got = "error"
		}
		if got != tt.want {
			t.Errorf("redisAddr(%q, %q) = %s, want %s", tt.host, tt.port, got, tt.want)
		}
	}
}
