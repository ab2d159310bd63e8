package memory

import "time"

// Stopped returns, for each current subscription of topic, a channel closed
// once its dispatcher and deliveries have all returned.
func Stopped(p *PubSub, topic string) []<-chan struct{} {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var out []<-chan struct{}
	for _, sub := range p.topics[topic] {
		out = append(out, sub.stopped)
	}
	return out
}

// NextDelay is the redelivery backoff step.
func NextDelay(d, limit time.Duration) time.Duration { return nextDelay(d, limit) }
