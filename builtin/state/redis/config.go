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
	// keyAutoPipelineEngine picks the auto-pipeliner: "wapr" (redisbatch,
	// the default), "go-redis" (go-redis's AsyncAutoPipeline) or
	// "go-redis-fd" (its full-duplex mode). Temporary, for the comparison
	// of issue 14 item 6.
	keyAutoPipelineEngine = "autoPipelineEngine"
)

const (
	// Two batches in flight: one is formed and sent while the other waits
	// for its replies.
	defaultAutoPipeline = 2
	maxAutoPipeline     = 64
)

// config is the store's spec.metadata, parsed and checked.
type config struct {
	conn       redisconn.Config
	defaultTTL time.Duration // 0: values never expire unless asked
	// autoPipelineBatches is how many batches of concurrent requests may
	// wait for Redis at once; 0: no batching, a round trip per request.
	autoPipelineBatches int
	autoPipelineEngine  string
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
	c.autoPipelineEngine = r.String(keyAutoPipelineEngine, "wapr")
	switch c.autoPipelineEngine {
	case "wapr", "go-redis", "go-redis-fd":
	default:
		r.Fail(keyAutoPipelineEngine, "must be wapr, go-redis or go-redis-fd, got "+strconv.Quote(c.autoPipelineEngine))
	}
	return c, r.Err()
}
