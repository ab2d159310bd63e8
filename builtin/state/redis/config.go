package redis

import (
	"fmt"
	"strconv"
	"time"

	"github.com/wapr-dev/wapr/builtin/internal/redisconn"
	"github.com/wapr-dev/wapr/host/component"
)

// Metadata keys of the store itself (the connection's are in redisconn).
const (
	keyTTL = "ttlInSeconds"
	// keyAutoPipeline is wapr's own; Dapr ignores it.
	keyAutoPipeline = "autoPipelineBatches"
)

// autoPipelineBatches is 0 (off) or more (on); values above 1 were a
// number of batches in flight, which go-redis's ordered auto-pipeliner
// fixes at one, and are still accepted.
const (
	defaultAutoPipeline = 1
	maxAutoPipeline     = 64
)

// config is the store's spec.metadata, parsed and checked.
type config struct {
	conn       redisconn.Config
	defaultTTL time.Duration // 0: values never expire unless asked
	// autoPipelineBatches is 0 for no batching, a round trip per request;
	// any other value turns auto-pipelining on.
	autoPipelineBatches int
}

// parseConfig reads md and reports every problem at once in a
// *component.ConfigError.
func parseConfig(md component.Metadata) (config, error) {
	r := component.NewConfigReader(md)
	c := config{conn: redisconn.Parse(r)}

	switch ttl := r.Int(keyTTL, 0); {
	case ttl > 0:
		c.defaultTTL = time.Duration(ttl) * time.Second
	case ttl < -1:
		r.Fail(keyTTL, "must be positive, or -1 or 0 for no default TTL, got "+strconv.Itoa(ttl))
	}

	c.autoPipelineBatches = r.Int(keyAutoPipeline, defaultAutoPipeline)
	if c.autoPipelineBatches < 0 || c.autoPipelineBatches > maxAutoPipeline {
		r.Fail(keyAutoPipeline, fmt.Sprintf("must be between 0 (off) and %d, got %d", maxAutoPipeline, c.autoPipelineBatches))
	}
	return c, r.Err()
}
