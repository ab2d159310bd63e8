package kafkaclient

import (
	"context"
	"fmt"
	"strings"

	"github.com/segmentio/kafka-go"

	"github.com/wapr-dev/wapr/host/component"
)

// Ping checks that at least one of c's brokers answers the Kafka protocol
// (an ApiVersions round trip). It asks all brokers at once and returns as
// soon as one answers; it waits at most until ctx's deadline or DialTimeout,
// whichever comes first. When none answers, the error wraps
// component.ErrUnavailable and names every broker with its failure.
func Ping(ctx context.Context, c Config) error {
	ctx, cancel := context.WithTimeout(ctx, DialTimeout)
	defer cancel() // also stops the attempts still running after a success
	d := &kafka.Dialer{ClientID: c.ClientID, Timeout: DialTimeout, DualStack: true}
	results := make(chan error, len(c.Brokers)) // buffered: late attempts never block
	for _, b := range c.Brokers {
		go func() { results <- pingBroker(ctx, d, b) }()
	}
	var problems []string
	for range c.Brokers {
		err := <-results
		if err == nil {
			return nil
		}
		problems = append(problems, err.Error())
	}
	return fmt.Errorf("%w: no broker of %s answered: %s", component.ErrUnavailable, strings.Join(c.Brokers, ","), strings.Join(problems, "; "))
}

func pingBroker(ctx context.Context, d *kafka.Dialer, broker string) error {
	conn, err := d.DialContext(ctx, "tcp", broker)
	if err != nil {
		return fmt.Errorf("%s: %w", broker, err)
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	}
	if _, err := conn.ApiVersions(); err != nil {
		return fmt.Errorf("%s: %w", broker, err)
	}
	return nil
}
