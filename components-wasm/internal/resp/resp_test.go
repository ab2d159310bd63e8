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
		{strings.Repeat("*1\r\n", maxDepth+2) + ":1\r\n", "error"},
	}
	for _, tt := range tests {
		v, err := readValue(bufio.NewReader(strings.NewReader(tt.in)), 0)
		got := "error"
		if err == nil {
			got = v.String()
		}
		if got != tt.want {
			t.Errorf("readValue(%q) = %s, want %s", tt.in, got, tt.want)
		}
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
