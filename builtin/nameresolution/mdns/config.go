package mdns

import (
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/wapr-dev/wapr/builtin/internal/nrconfig"
)

// Configuration keys and defaults; see the package comment.
const (
	keyInterface = "interface"
	keyTimeout   = "timeout"
	keyIPv6      = "ipv6"

	defaultTimeout = time.Second
	maxTimeout     = time.Minute
)

// config is the parsed configuration, immutable after parseConfig.
type config struct {
	iface   *net.Interface // nil: the system's choice (see the package comment)
	timeout time.Duration  // how long one query listens for answers, > 0
	ipv6    bool           // also query over IPv6
}

func defaultConfig() config { return config{timeout: defaultTimeout} }

// parseConfig reads every key, applies the defaults and reports every problem
// at once as a *component.ConfigError. It looks the interface up by name.
func parseConfig(m map[string]any) (config, error) {
	r := nrconfig.NewReader(m)
	c := defaultConfig()

	if name := r.String(keyInterface, ""); name != "" {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			r.Fail(keyInterface, "no network interface is named "+strconv.Quote(name)+knownInterfaces())
		} else {
			c.iface = ifi
		}
	}

	c.timeout = r.Duration(keyTimeout, defaultTimeout)
	if c.timeout <= 0 || c.timeout > maxTimeout {
		r.Fail(keyTimeout, "must be positive and at most "+maxTimeout.String()+", got "+c.timeout.String())
	}

	c.ipv6 = r.Bool(keyIPv6, false)

	if err := r.Err(); err != nil {
		return config{}, err
	}
	return c, nil
}

// knownInterfaces lists the interface names for an error message.
func knownInterfaces() string {
	ifs, err := net.Interfaces()
	if err != nil || len(ifs) == 0 {
		return ""
	}
	names := make([]string, len(ifs))
	for i, ifi := range ifs {
		names[i] = ifi.Name
	}
	return " (this host has " + strings.Join(names, ", ") + ")"
}
