package mdnstest

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestRunPattern(t *testing.T) {
	tests := []struct{ name, want string }{
		{"TestA", "^TestA$"},
		{"TestA/sub_1", "^TestA$/^sub_1$"},
		{"TestA/a.b+(c)", `^TestA$/^a\.b\+\(c\)$`},
		{"TestA/x/y#01", "^TestA$/^x$/^y#01$"},
	}
	for _, tt := range tests {
		if got := runPattern(tt.name); got != tt.want {
			t.Errorf("runPattern(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestIsolate checks the namespace: only lo, up, with the multicast group
// routed to it, also for a subprocess.
func TestIsolate(t *testing.T) {
	if !Isolate(t) {
		return
	}
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	if len(ifs) != 1 || ifs[0].Name != Interface || ifs[0].Flags&net.FlagUp == 0 || ifs[0].Flags&net.FlagMulticast == 0 {
		t.Errorf("interfaces = %v, want only %s, up and multicast", ifs, Interface)
	}
	// Joining without naming an interface needs the route.
	c, err := net.ListenMulticastUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251), Port: 5353})
	if err != nil {
		t.Errorf("joining 224.0.0.251 on the default interface: %v", err)
	} else {
		c.Close()
	}
	out, err := exec.Command("ip", "-o", "link", "show").CombinedOutput()
	if err != nil || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 || !strings.Contains(string(out), " lo:") {
		t.Errorf("a subprocess sees other links: %v\n%s", err, out)
	}
}

// TestIsolateSubtest checks that a subtest calling Isolate re-runs itself
// only.
func TestIsolateSubtest(t *testing.T) {
	t.Run("sibling", func(t *testing.T) {
		if os.Getenv(EnvVar) == "1" {
			t.Error("a sibling of the isolated subtest ran in the namespace")
		}
	})
	t.Run("isolated", func(t *testing.T) {
		if !Isolate(t) {
			return
		}
		if ifs, _ := net.Interfaces(); len(ifs) != 1 {
			t.Errorf("interfaces = %v, want only lo", ifs)
		}
	})
}
