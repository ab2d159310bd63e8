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
	return c.conn.Options(), Settings{
		Group: c.group, GeneratedGroup: c.generatedGroup, ProcessingTimeout: c.processingTimeout,
		RedeliverInterval: c.redeliverInterval, QueueDepth: c.queueDepth, Concurrency: c.concurrency, MaxLenApprox: c.maxLenApprox,
	}, nil
}

// AddHook adds h to the connection pool, which sends the acknowledgements.
// Call it after Init and before Subscribe.
func (p *PubSub) AddHook(h goredis.Hook) { p.client.Load().AddHook(h) }

// QueuedAcks returns how many IDs wait for the acker, over every
// subscription.
func (p *PubSub) QueuedAcks() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for s := range p.subs {
		s.acks.mu.Lock()
		n += len(s.acks.ids)
		s.acks.mu.Unlock()
	}
	return n
}
