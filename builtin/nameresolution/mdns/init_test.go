package mdns

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/nameresolution"
)

// TestInitRefusesBadInstance covers the checks made before anything touches
// the network, so it needs no isolation.
func TestInitRefusesBadInstance(t *testing.T) {
	tests := []struct {
		name string
		inst nameresolution.Instance
		want string
	}{
		{"dotted app id", nameresolution.Instance{AppID: "a.b", Address: "127.0.0.1", InternalPort: 1}, `app id "a.b": it must be letters`},
		{"no address", nameresolution.Instance{AppID: "a", InternalPort: 1}, `the instance address "" is not an IP`},
		{"host name address", nameresolution.Instance{AppID: "a", Address: "localhost", InternalPort: 1}, "is not an IP"},
		{"unspecified address", nameresolution.Instance{AppID: "a", Address: "0.0.0.0", InternalPort: 1}, "is not an IP"},
		{"no port", nameresolution.Instance{AppID: "a", Address: "127.0.0.1"}, "the internal port 0 is not in 1..65535"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New()
			err := r.Init(t.Context(), nameresolution.Metadata{Instance: tt.inst})
			if !errors.Is(err, component.ErrInvalidArgument) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Init = %v, want ErrInvalidArgument containing %q", err, tt.want)
			}
			if err := r.Close(context.Background()); err != nil {
				t.Errorf("Close after a failed Init = %v", err)
			}
		})
	}
}

func TestResolveRefusesBadIDs(t *testing.T) {
	r := New()
	defer r.Close(context.Background())
	for _, id := range []string{"", "a.b", "a b"} {
		if _, err := r.Resolve(t.Context(), nameresolution.Request{ID: id}); !errors.Is(err, component.ErrInvalidArgument) {
			t.Errorf("Resolve(%q) = %v, want ErrInvalidArgument", id, err)
		}
	}
}

func TestInstanceName(t *testing.T) {
	for _, port := range []int{1, 65535} {
		name := instanceName(port)
		if len(name) > 63 || strings.ContainsAny(name, "._ ") || !strings.HasSuffix(name, "-"+strconv.Itoa(port)) {
			t.Errorf("instanceName(%d) = %q, want one DNS label ending in the port", port, name)
		}
	}
}
