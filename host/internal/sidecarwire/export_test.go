package sidecarwire

import "time"

// ExpireCalls ends the calls of c's connections whose defaultTimeout has
// passed at now, as each connection does every expireInterval, and says
// how many it ended.
func ExpireCalls(c *MuxClient, now time.Time) int {
	n := 0
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.peers {
		p.mu.Lock()
		cc := p.conn
		p.mu.Unlock()
		if cc != nil {
			n += cc.expire(now.UnixNano())
		}
	}
	return n
}

// DefaultTimeout is the bound of a call whose ctx has none.
const DefaultTimeout = defaultTimeout

// SetCallBounds sets, before c's first call, how long a call whose ctx has
// no deadline may take and how often its connection looks for such calls.
func SetCallBounds(c *MuxClient, timeout, interval time.Duration) {
	c.bounds = callBounds{timeout: timeout, interval: interval}
}
