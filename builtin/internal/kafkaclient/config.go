// Package kafkaclient is what the pubsub.kafka and bindings.kafka drivers
// share: the metadata keys both read (with Dapr's names), the broker check
// done at Init, producing messages and the consumer-group delivery loop. It
// wraps github.com/segmentio/kafka-go so that the two drivers stay small;
// nothing else imports it.
//
// Only plaintext connections without authentication are supported: every
// metadata key that would turn on TLS or SASL is reported as a configuration
// problem rather than silently ignored.
package kafkaclient

import (
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/wapr-dev/wapr/host/component"
)

// Metadata keys both drivers read, spelled as Dapr spells them. ConfigReader
// matches them case-insensitively.
const (
	KeyBrokers              = "brokers"
	KeyConsumerGroup        = "consumerGroup"
	KeyConsumerID           = "consumerID"
	KeyClientID             = "clientID"
	KeyAuthType             = "authType"
	KeyAuthRequired         = "authRequired"
	KeyInitialOffset        = "initialOffset"
	KeyMaxMessageBytes      = "maxMessageBytes"
	KeyConsumeRetryInterval = "consumeRetryInterval"
	KeyConsumeRetryEnabled  = "consumeRetryEnabled"
	KeyHeartbeatInterval    = "heartbeatInterval"
	KeySessionTimeout       = "sessionTimeout"
	KeyVersion              = "version"
	KeyDisableTLS           = "disableTls"
	KeyEscapeHeaders        = "escapeHeaders"
)

// Keys that only make sense with TLS, or with a feature wapr lacks; setting
// them is a configuration problem (see ReadConfig).
var unsupportedKeys = []string{"caCert", "clientCert", "clientKey", "schemaRegistryURL"}

// Defaults, in one place. Dapr's values unless noted.
const (
	DefaultClientID = "wapr" // Dapr: sarama's "sarama"
	// DefaultMaxMessageBytes is the largest record batch a producer sends and
	// the smallest fetch size a consumer asks for: Kafka's own default
	// message.max.bytes, rounded to 1 MiB.
	DefaultMaxMessageBytes      = 1 << 20
	DefaultConsumeRetryInterval = 100 * time.Millisecond
	DefaultHeartbeatInterval    = 3 * time.Second
	DefaultSessionTimeout       = 10 * time.Second

	// MaxRetryInterval caps the redelivery backoff, which doubles from
	// consumeRetryInterval.
	MaxRetryInterval = 5 * time.Second
	// DialTimeout bounds connecting to a broker and the broker check at Init
	// when the caller's context has no earlier deadline.
	DialTimeout = 10 * time.Second
)

const authNone = "none"

// Config is the parsed form of the shared keys. It is a value: copy it
// freely; nothing in it is modified after ReadConfig.
type Config struct {
	Brokers  []string // host:port, at least one
	ClientID string
	// ConsumerGroup is consumerGroup, else consumerID (which daprd fills in
	// with the app id for pub/sub components), else "".
	ConsumerGroup     string
	StartOffset       int64 // kafka.LastOffset (newest) or kafka.FirstOffset (oldest)
	MaxMessageBytes   int
	RetryInterval     time.Duration // first redelivery delay, > 0
	HeartbeatInterval time.Duration
	SessionTimeout    time.Duration
	EscapeHeaders     bool // URL-escape header values and the key on delivery, as Dapr's escapeHeaders
}

// ReadConfig reads the shared keys from r, applying the defaults and
// recording every problem on r; the caller adds its own keys and then calls
// r.Err. The returned Config is only meaningful when r.Err is nil.
func ReadConfig(r *component.ConfigReader) Config {
	c := Config{
		ClientID:          r.String(KeyClientID, DefaultClientID),
		ConsumerGroup:     r.String(KeyConsumerGroup, r.String(KeyConsumerID, "")),
		MaxMessageBytes:   r.Int(KeyMaxMessageBytes, DefaultMaxMessageBytes),
		RetryInterval:     r.Duration(KeyConsumeRetryInterval, DefaultConsumeRetryInterval, time.Millisecond),
		HeartbeatInterval: r.Duration(KeyHeartbeatInterval, DefaultHeartbeatInterval, time.Second),
		SessionTimeout:    r.Duration(KeySessionTimeout, DefaultSessionTimeout, time.Second),
		EscapeHeaders:     r.Bool(KeyEscapeHeaders, false),
	}

	if raw := r.Required(KeyBrokers); raw != "" {
		var bad []string
		for _, b := range strings.Split(raw, ",") {
			b = strings.TrimSpace(b)
			if b == "" {
				continue
			}
			if _, port, err := net.SplitHostPort(b); err != nil || port == "" {
				bad = append(bad, strconv.Quote(b))
				continue
			}
			c.Brokers = append(c.Brokers, b)
		}
		switch {
		case len(bad) > 0:
			r.Fail(KeyBrokers, "each broker must be host:port, got "+strings.Join(bad, ", "))
		case len(c.Brokers) == 0:
			r.Fail(KeyBrokers, "names no broker: "+strconv.Quote(raw))
		}
	}

	readAuth(r)

	switch v := r.String(KeyInitialOffset, "newest"); strings.ToLower(v) {
	case "newest":
		c.StartOffset = kafka.LastOffset
	case "oldest":
		c.StartOffset = kafka.FirstOffset
	default:
		r.Fail(KeyInitialOffset, "must be newest or oldest, got "+strconv.Quote(v))
	}

	if c.MaxMessageBytes <= 0 {
		r.Fail(KeyMaxMessageBytes, "must be a positive number of bytes, got "+strconv.Itoa(c.MaxMessageBytes))
	}
	if c.RetryInterval <= 0 {
		r.Fail(KeyConsumeRetryInterval, "must be positive, got "+c.RetryInterval.String())
	}
	if c.HeartbeatInterval <= 0 {
		r.Fail(KeyHeartbeatInterval, "must be positive, got "+c.HeartbeatInterval.String())
	}
	if c.SessionTimeout <= c.HeartbeatInterval {
		r.Fail(KeySessionTimeout, "must be longer than "+KeyHeartbeatInterval+" ("+c.HeartbeatInterval.String()+"), got "+c.SessionTimeout.String())
	}

	// Read for validation only: wapr always retries a failed delivery (the
	// pub/sub contract requires it), Kafka's protocol version is negotiated,
	// and with authType none Dapr does not use TLS either.
	r.Bool(KeyConsumeRetryEnabled, true)
	r.String(KeyVersion, "")
	r.Bool(KeyDisableTLS, true)

	for _, k := range unsupportedKeys {
		if r.String(k, "") != "" {
			r.Fail(k, "is not supported by wapr's native Kafka driver (plaintext connections only, no schema registry); remove it")
		}
	}
	if r.Bool("skipVerify", false) {
		r.Fail("skipVerify", "is not supported by wapr's native Kafka driver (plaintext connections only, no TLS); remove it")
	}
	return c
}

// readAuth accepts authType none, or the legacy authRequired=false, and
// records a problem for anything that asks for authentication.
func readAuth(r *component.ConfigReader) {
	authType := r.String(KeyAuthType, "")
	if authType == "" {
		if r.Bool(KeyAuthRequired, false) {
			r.Fail(KeyAuthRequired, "true (SASL authentication) is not supported by wapr's native Kafka driver; only authType none is")
		}
		return
	}
	if !strings.EqualFold(authType, authNone) {
		r.Fail(KeyAuthType, strconv.Quote(authType)+" is not supported by wapr's native Kafka driver; only "+authNone+" (plaintext, no SASL, no TLS) is")
	}
}
