package resp

import (
	"bufio"
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
	for _, tt := range tests {
		c := &Client{r: bufio.NewReader(strings.NewReader(tt.in))}
		v, err := c.readValue(0)
		got := "error"
		if err == nil {
			got = v.String()
		}
		if got != tt.want {
			t.Errorf("readValue(%q) = %s, want %s", tt.in, got, tt.want)
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
	c := &Client{r: bufio.NewReader(strings.NewReader(in.String()))}
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
	c = &Client{r: bufio.NewReader(strings.NewReader("*2\r\n$3\r\nabc\r\n+OK\r\n*2\r\n$3\r\nXYZ\r\n+NO\r\n"))}
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

func TestCommandEncoding(t *testing.T) {
	c := Cmd("SET", "k").Bytes([]byte("a\r\nb")).Int(-5)
	want := "$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n$2\r\n-5\r\n"
	if string(c.args) != want || c.n != 4 {
		t.Fatalf("args %q (%d), want %q", c.args, c.n, want)
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
