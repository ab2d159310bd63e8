package redis

import (
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wapr-dev/wapr/host/component"
)

// Settings is the delivery part of a parsed configuration.
type Settings struct {
	Group             string
	GeneratedGroup    bool
	ProcessingTimeout time.Duration
	RedeliverInterval time.Duration
	QueueDepth        int
	Concurrency       int
	MaxLenApprox      int64
}

// ParseConfig parses md as Init does.
func ParseConfig(md component.Metadata) (*goredis.Options, Settings, error) {
	c, err := parseConfig(md)
	if err != nil {
		return nil, Settings{}, err
	}
	return c.options(), Settings{
		Group: c.group, GeneratedGroup: c.generatedGroup, ProcessingTimeout: c.processingTimeout,
		RedeliverInterval: c.redeliverInterval, QueueDepth: c.queueDepth, Concurrency: c.concurrency, MaxLenApprox: c.maxLenApprox,
	}, nil
}
