package redis

import (
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/wapr-dev/wapr/host/component"
)

// Metadata keys (Dapr's names; matched case-insensitively).
const (
	keyHost               = "redisHost"
	keyPort               = "redisPort"
	keyPassword           = "redisPassword"
	keyUsername           = "redisUsername"
	keyDB                 = "redisDB"
	keyType               = "redisType"
	keyFailover           = "failover"
	keySentinelMaster     = "sentinelMasterName"
	keyEnableTLS          = "enableTLS"
	keyClientCert         = "clientCert"
	keyClientKey          = "clientKey"
	keyInsecureSkipVerify = "insecureSkipTLSVerify"
	keyMaxRetries         = "maxRetries"
	keyRedisMaxRetries    = "redisMaxRetries"
	keyMaxRetryBackoff    = "maxRetryBackoff"
	keyRedisMaxRetryIntvl = "redisMaxRetryInterval"
	keyRedisMinRetryIntvl = "redisMinRetryInterval"
	keyDialTimeout        = "dialTimeout"
	keyReadTimeout        = "readTimeout"
	keyWriteTimeout       = "writeTimeout"
	keyPoolSize           = "poolSize"
	keyMinIdleConns       = "minIdleConns"
	keyPoolTimeout        = "poolTimeout"
	keyIdleTimeout        = "idleTimeout"
	keyMaxConnAge         = "maxConnAge"
	keyTTL                = "ttlInSeconds"
	// keyAutoPipeline is wapr's own; Dapr ignores it.
	keyAutoPipeline = "autoPipelineBatches"
)

// Defaults, as Dapr's state.redis documents them.
const (
	defaultPort            = "6379"
	defaultMaxRetries      = 3
	defaultMinRetryBackoff = 8 * time.Millisecond
	defaultMaxRetryBackoff = 2 * time.Second
	defaultDialTimeout     = 5 * time.Second
	defaultReadTimeout     = 3 * time.Second
	// Two batches in flight: one is formed and sent while the other waits
	// for its replies.
	defaultAutoPipeline = 2
	maxAutoPipeline     = 64
)

// config is the store's spec.metadata, parsed and checked.
type config struct {
	addr            string
	username        string
	password        string
	db              int
	tls             *tls.Config // nil: plain TCP
	maxRetries      int         // -1: none
	minRetryBackoff time.Duration
	maxRetryBackoff time.Duration
	dialTimeout     time.Duration
	readTimeout     time.Duration // -1: none
	writeTimeout    time.Duration // -1: none
	poolSize        int           // 0: go-redis's default, 10 per CPU
	minIdleConns    int
	poolTimeout     time.Duration // 0: go-redis's default, readTimeout + 1s
	idleTimeout     time.Duration // -1: never close idle connections
	maxConnAge      time.Duration // 0: no limit
	defaultTTL      time.Duration // 0: values never expire unless asked
	// autoPipelineBatches is how many batches of concurrent requests may
	// wait for Redis at once; 0: no batching, a round trip per request.
	autoPipelineBatches int
}

// parseConfig reads md and reports every problem at once in a
// *component.ConfigError.
func parseConfig(md component.Metadata) (config, error) {
	r := component.NewConfigReader(md)
	var c config

	c.addr = parseAddr(r)
	c.username = r.String(keyUsername, "")
	c.password = r.String(keyPassword, "")
	c.db = r.Int(keyDB, 0)
	if c.db < 0 {
		r.Fail(keyDB, "must not be negative, got "+strconv.Itoa(c.db))
	}
	rejectTopologies(r)
	c.tls = parseTLS(r)

	// Dapr's state.redis reads maxRetries and maxRetryBackoff; its shared
	// Redis settings read the redis-prefixed aliases, which win.
	c.maxRetries = r.Int(keyRedisMaxRetries, r.Int(keyMaxRetries, defaultMaxRetries))
	if c.maxRetries < -1 {
		r.Fail(keyMaxRetries, "must be -1 (no retries) or more, got "+strconv.Itoa(c.maxRetries))
	}
	c.maxRetryBackoff = orDisabled(r.Duration(keyRedisMaxRetryIntvl, r.Duration(keyMaxRetryBackoff, defaultMaxRetryBackoff, time.Millisecond), time.Millisecond))
	c.minRetryBackoff = orDisabled(r.Duration(keyRedisMinRetryIntvl, defaultMinRetryBackoff, time.Millisecond))

	c.dialTimeout = r.Duration(keyDialTimeout, defaultDialTimeout, time.Millisecond)
	if c.dialTimeout <= 0 {
		r.Fail(keyDialTimeout, "must be positive, got "+c.dialTimeout.String())
	}
	c.readTimeout = orDisabled(r.Duration(keyReadTimeout, defaultReadTimeout, time.Millisecond))
	c.writeTimeout = orDisabled(r.Duration(keyWriteTimeout, c.readTimeout, time.Millisecond))

	c.poolSize = r.Int(keyPoolSize, 0)
	if c.poolSize < 0 {
		r.Fail(keyPoolSize, "must not be negative, got "+strconv.Itoa(c.poolSize))
	}
	c.minIdleConns = r.Int(keyMinIdleConns, 0)
	if c.minIdleConns < 0 || (c.poolSize > 0 && c.minIdleConns > c.poolSize) {
		r.Fail(keyMinIdleConns, fmt.Sprintf("must be between 0 and %s, got %d", keyPoolSize, c.minIdleConns))
	}
	c.poolTimeout = r.Duration(keyPoolTimeout, 0, time.Millisecond)
	if c.poolTimeout < 0 {
		r.Fail(keyPoolTimeout, "must not be negative, got "+c.poolTimeout.String())
	}
	c.idleTimeout = orDisabled(r.Duration(keyIdleTimeout, 0, time.Millisecond))
	c.maxConnAge = r.Duration(keyMaxConnAge, 0, time.Millisecond)
	if c.maxConnAge < 0 {
		r.Fail(keyMaxConnAge, "must not be negative, got "+c.maxConnAge.String())
	}

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
	return c, r.Err()
}

// parseAddr returns redisHost as host:port, adding redisPort or 6379 when it
// has no port, as Dapr does.
func parseAddr(r *component.ConfigReader) string {
	host := r.Required(keyHost)
	port := r.String(keyPort, "")
	if host == "" {
		return ""
	}
	if strings.Contains(host, ",") {
		r.Fail(keyHost, "lists several addresses (Redis Cluster or Sentinel), which wapr's native driver does not support; give one host:port")
		return ""
	}
	h, p, err := net.SplitHostPort(host)
	if err != nil {
		// No port (or a bare IPv6 address).
		h, p = strings.Trim(host, "[]"), port
		if p == "" {
			p = defaultPort
		}
	} else if port != "" && port != p {
		r.Fail(keyPort, fmt.Sprintf("is %s but %s already names port %s; set only one", port, keyHost, p))
	}
	if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
		r.Fail(keyHost, "has an invalid port "+strconv.Quote(p))
		return ""
	}
	if h == "" {
		r.Fail(keyHost, "has no host name in "+strconv.Quote(host))
		return ""
	}
	return net.JoinHostPort(h, p)
}

// rejectTopologies reports the Dapr settings for Redis Cluster and Sentinel,
// which this driver does not implement: connecting to a sentinel or a cluster
// node as if it were a single server would misbehave in confusing ways.
func rejectTopologies(r *component.ConfigReader) {
	switch t := strings.ToLower(r.String(keyType, "node")); t {
	case "node":
	case "cluster":
		r.Fail(keyType, "cluster is not supported by wapr's native driver; use a single Redis server (redisType node)")
	default:
		r.Fail(keyType, "must be node or cluster, got "+strconv.Quote(t))
	}
	if r.Bool(keyFailover, false) {
		r.Fail(keyFailover, "Redis Sentinel failover is not supported by wapr's native driver")
	}
	if r.String(keySentinelMaster, "") != "" {
		r.Fail(keySentinelMaster, "Redis Sentinel is not supported by wapr's native driver")
	}
}

// parseTLS returns the TLS settings, or nil when enableTLS is off.
func parseTLS(r *component.ConfigReader) *tls.Config {
	enabled := r.Bool(keyEnableTLS, false)
	skip := r.Bool(keyInsecureSkipVerify, false)
	cert, key := r.String(keyClientCert, ""), r.String(keyClientKey, "")
	if (cert == "") != (key == "") {
		r.Fail(keyClientCert, "set both clientCert and clientKey, or neither")
		return nil
	}
	if !enabled {
		if cert != "" {
			r.Fail(keyClientCert, "needs enableTLS true")
		}
		return nil
	}
	// InsecureSkipVerify is an explicit opt-in, as in Dapr.
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: skip}
	if cert != "" {
		pair, err := tls.X509KeyPair([]byte(cert), []byte(key))
		if err != nil {
			r.Fail(keyClientCert, "is not a PEM certificate and key pair: "+err.Error())
			return nil
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg
}

// orDisabled maps any negative duration to -1, go-redis's "disabled", since
// Dapr spells it "-1" (which the reader takes as -1ms).
func orDisabled(d time.Duration) time.Duration {
	if d < 0 {
		return -1
	}
	return d
}

// options returns the go-redis client options for c.
func (c config) options() *goredis.Options {
	return &goredis.Options{
		Addr:            c.addr,
		Username:        c.username,
		Password:        c.password,
		DB:              c.db,
		TLSConfig:       c.tls,
		MaxRetries:      c.maxRetries,
		MinRetryBackoff: c.minRetryBackoff,
		MaxRetryBackoff: c.maxRetryBackoff,
		DialTimeout:     c.dialTimeout,
		// One dial per attempt: maxRetries is the one retry policy, so a
		// request to a Redis that is down fails after maxRetries quick
		// attempts instead of go-redis's five dials per attempt.
		DialerRetries:   1,
		ReadTimeout:     c.readTimeout,
		WriteTimeout:    c.writeTimeout,
		PoolSize:        c.poolSize,
		MinIdleConns:    c.minIdleConns,
		PoolTimeout:     c.poolTimeout,
		ConnMaxIdleTime: c.idleTimeout,
		ConnMaxLifetime: c.maxConnAge,
		// Callers' deadlines bound every command.
		ContextTimeoutEnabled: true,
		// Maintenance notifications are a Redis Enterprise feature; probing
		// for them costs a round trip on every new connection.
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
}
