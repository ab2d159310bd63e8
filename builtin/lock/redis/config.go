package redis

import (
	"github.com/wapr-dev/wapr/builtin/internal/redisconn"
	"github.com/wapr-dev/wapr/host/component"
)

// parseConfig reads md and reports every problem at once in a
// *component.ConfigError. A lock store has no keys of its own: only the
// connection's (redisconn), which refuses Redis Cluster and Sentinel.
func parseConfig(md component.Metadata) (redisconn.Config, error) {
	r := component.NewConfigReader(md)
	c := redisconn.Parse(r)
	return c, r.Err()
}
