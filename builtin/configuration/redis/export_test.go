package redis

import (
	goredis "github.com/redis/go-redis/v9"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/configuration"
)

// ParseOptions parses md as Init does and returns the client options it
// would use.
func ParseOptions(md component.Metadata) (*goredis.Options, error) {
	c, err := parseConfig(md)
	if err != nil {
		return nil, err
	}
	return c.Options(), nil
}

// ParseItem splits a Redis value as Get does; nil means left out.
func ParseItem(raw string) *configuration.Item { return parseItem(raw) }

// MissingEvents returns the notify-keyspace-events classes flags lacks.
func MissingEvents(flags string) string { return missingEvents(flags) }

// RetryInitial is the first back-off of a subscription that cannot read.
const RetryInitial = retryInitial

// Failures returns how many reads of subscription id have failed; -1 when
// there is no such subscription.
func Failures(s *Store, id string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := s.subs[id]
	if sub == nil {
		return -1
	}
	return sub.failures.Load()
}
