package redis

import (
	"fmt"
	"os"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wapr-dev/wapr/builtin/internal/redisconn"
	"github.com/wapr-dev/wapr/host/component"
)

// Metadata keys of the pub/sub itself (the connection's are in redisconn;
// Dapr's names, matched case-insensitively).
const (
	keyConsumerID        = "consumerID"
	keyProcessingTimeout = "processingTimeout"
	keyRedeliverInterval = "redeliverInterval"
	keyQueueDepth        = "queueDepth"
	keyConcurrency       = "concurrency"
	keyMaxLenApprox      = "maxLenApprox"
)

// Defaults, as in Dapr's pubsub.redis code (its metadata.yaml swaps the two
// intervals; the code is what runs).
const (
	defaultProcessingTimeout = 60 * time.Second
	defaultRedeliverInterval = 15 * time.Second
	defaultQueueDepth        = 100
	defaultConcurrency       = 10
	maxQueueDepth            = 100_000
)

// config is the component's spec.metadata, parsed and checked.
type config struct {
	// group is the consumer group (consumerID); generatedGroup tells that
	// it was made up because consumerID was not set.
	group             string
	generatedGroup    bool
	processingTimeout time.Duration // 0: never reclaim
	redeliverInterval time.Duration // 0: never reclaim
	queueDepth        int
	concurrency       int
	maxLenApprox      int64 // 0: streams are not trimmed

	conn redisconn.Config
}

// parseConfig reads md and reports every problem at once in a
// *component.ConfigError.
func parseConfig(md component.Metadata) (config, error) {
	r := component.NewConfigReader(md)
	c := config{conn: redisconn.Parse(r)}

	c.group = r.String(keyConsumerID, "")
	if c.group == "" {
		c.group, c.generatedGroup = processName(), true
	}
	c.processingTimeout = r.Duration(keyProcessingTimeout, defaultProcessingTimeout, time.Millisecond)
	if c.processingTimeout < 0 {
		r.Fail(keyProcessingTimeout, "must not be negative (0 disables redelivery), got "+c.processingTimeout.String())
	}
	c.redeliverInterval = r.Duration(keyRedeliverInterval, defaultRedeliverInterval, time.Millisecond)
	if c.redeliverInterval < 0 {
		r.Fail(keyRedeliverInterval, "must not be negative (0 disables redelivery), got "+c.redeliverInterval.String())
	}
	c.queueDepth = r.Int(keyQueueDepth, defaultQueueDepth)
	if c.queueDepth < 1 || c.queueDepth > maxQueueDepth {
		r.Fail(keyQueueDepth, fmt.Sprintf("must be between 1 and %d, got %d", maxQueueDepth, c.queueDepth))
	}
	c.concurrency = r.Int(keyConcurrency, defaultConcurrency)
	if c.concurrency < 1 || c.concurrency > maxQueueDepth {
		r.Fail(keyConcurrency, fmt.Sprintf("must be between 1 and %d, got %d", maxQueueDepth, c.concurrency))
	}
	c.maxLenApprox = int64(r.Int(keyMaxLenApprox, 0))
	if c.maxLenApprox < 0 {
		r.Fail(keyMaxLenApprox, "must not be negative (0 keeps every message), got "+strconv.FormatInt(c.maxLenApprox, 10))
	}
	return c, r.Err()
}

// reclaims reports whether pending messages are reclaimed at all.
func (c config) reclaims() bool { return c.processingTimeout > 0 && c.redeliverInterval > 0 }

// processName names this process for Redis: host name and process id.
func processName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "wapr"
	}
	return host + "-" + strconv.Itoa(os.Getpid())
}

// pollerOptions returns the options of a subscription's own connection: one
// connection, no idle ones kept.
func (c config) pollerOptions() *goredis.Options {
	o := c.conn.Options()
	o.PoolSize, o.MinIdleConns = 1, 0
	return o
}
