package api

import (
	"bytes"
	"testing"
)

func TestBuffer(t *testing.T) {
	for _, n := range []int{0, 1, minBuffer, minBuffer + 1, maxBuffer, maxBuffer + 1} {
		b := GetBuffer(n)
		if len(b.B) != n || n > 0 && cap(b.B) < min(max(n, minBuffer), maxBuffer) {
			t.Errorf("GetBuffer(%d): len %d cap %d", n, len(b.B), cap(b.B))
		}
		b.Release()
		if n > maxBuffer && b.B != nil {
			t.Errorf("a released buffer of %d bytes is kept for reuse", n)
		}
	}
	var nilBuffer *Buffer
	nilBuffer.Release() // does nothing
}

func TestInvokeResponseKeepBody(t *testing.T) {
	buf := GetBuffer(5)
	copy(buf.B, "hello")
	res := &InvokeResponse{Body: buf.B, Buffer: buf}
	body := res.KeepBody()
	if string(body) != "hello" || res.Buffer != nil || string(res.Body) != "hello" {
		t.Fatalf("KeepBody: %q, response body %q, buffer %v", body, res.Body, res.Buffer)
	}
	copy(buf.B, "XXXXX") // the buffer's next holder writes into it
	if string(body) != "hello" {
		t.Errorf("the kept body changed with the released buffer: %q", body)
	}

	own := []byte("mine")
	res = &InvokeResponse{Body: own}
	if got := res.KeepBody(); &got[0] != &own[0] {
		t.Error("KeepBody copied a body that lives in no buffer")
	}
	res.Release() // no buffer: nothing happens
	if !bytes.Equal(res.Body, own) {
		t.Errorf("Release without a buffer dropped the body: %q", res.Body)
	}
}
