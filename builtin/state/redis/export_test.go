package redis

import (
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wapr-dev/wapr/host/component"
)

// ParseOptions parses md as Init does and returns the client options and the
// default TTL it would use.
func ParseOptions(md component.Metadata) (*goredis.Options, time.Duration, error) {
	c, err := parseConfig(md)
	if err != nil {
		return nil, 0, err
	}
	return c.conn.Options(), c.defaultTTL, nil
}

// AutoPipelineBatches parses md as Init does and returns its
// autoPipelineBatches (0: auto-pipelining off).
func AutoPipelineBatches(md component.Metadata) (int, error) {
	c, err := parseConfig(md)
	return c.autoPipelineBatches, err
}
