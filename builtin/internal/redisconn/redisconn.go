// Package redisconn is what wapr's native Redis drivers (state.redis,
// pubsub.redis) share about the connection: Dapr's connection metadata keys,
// parsed and checked the same way, the go-redis options they make, and how
// a go-redis error becomes a component error.
package redisconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/wapr-dev/wapr/host/component"
)

// Connection metadata keys (Dapr's names; matched case-insensitively).
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
)

// Defaults, as Dapr's Redis components document them.
const (
	defaultPort            = "6379"
	defaultMaxRetries      = 3
	defaultMinRetryBackoff = 8 * time.Millisecond
	defaultMaxRetryBackoff = 2 * time.Second
	defaultDialTimeout     = 5 * time.Second
	defaultReadTimeout     = 3 * time.Second
)

// Config is the connection part of a component's spec.metadata.
type Config struct {
	Addr            string
	Username        string
	Password        string
	DB              int
	TLS             *tls.Config // nil: plain TCP
	MaxRetries      int         // -1: none
	MinRetryBackoff time.Duration
	MaxRetryBackoff time.Duration
	DialTimeout     time.Duration
	ReadTimeout     time.Duration // -1: none
	WriteTimeout    time.Duration // -1: none
	PoolSize        int           // 0: go-redis's default, 10 per CPU
	MinIdleConns    int
	PoolTimeout     time.Duration // 0: go-redis's default, readTimeout + 1s
	IdleTimeout     time.Duration // -1: never close idle connections
	MaxConnAge      time.Duration // 0: no limit
}

// Parse reads the connection keys through r, which collects every problem.
func Parse(r *component.ConfigReader) Config {
	var c Config
	c.Addr = parseAddr(r)
	c.Username = r.String(keyUsername, "")
	c.Password = r.String(keyPassword, "")
	c.DB = r.Int(keyDB, 0)
	if c.DB < 0 {
		r.Fail(keyDB, "must not be negative, got "+strconv.Itoa(c.DB))
	}
	rejectTopologies(r)
	c.TLS = parseTLS(r)

	// Dapr's Redis components read maxRetries and maxRetryBackoff, and the
	// redis-prefixed aliases, which win.
	c.MaxRetries = r.Int(keyRedisMaxRetries, r.Int(keyMaxRetries, defaultMaxRetries))
	if c.MaxRetries < -1 {
		r.Fail(keyMaxRetries, "must be -1 (no retries) or more, got "+strconv.Itoa(c.MaxRetries))
	}
	c.MaxRetryBackoff = orDisabled(r.Duration(keyRedisMaxRetryIntvl, r.Duration(keyMaxRetryBackoff, defaultMaxRetryBackoff, time.Millisecond), time.Millisecond))
	c.MinRetryBackoff = orDisabled(r.Duration(keyRedisMinRetryIntvl, defaultMinRetryBackoff, time.Millisecond))

	c.DialTimeout = r.Duration(keyDialTimeout, defaultDialTimeout, time.Millisecond)
	if c.DialTimeout <= 0 {
		r.Fail(keyDialTimeout, "must be positive, got "+c.DialTimeout.String())
	}
	c.ReadTimeout = orDisabled(r.Duration(keyReadTimeout, defaultReadTimeout, time.Millisecond))
	c.WriteTimeout = orDisabled(r.Duration(keyWriteTimeout, c.ReadTimeout, time.Millisecond))

	c.PoolSize = r.Int(keyPoolSize, 0)
	if c.PoolSize < 0 {
		r.Fail(keyPoolSize, "must not be negative, got "+strconv.Itoa(c.PoolSize))
	}
	c.MinIdleConns = r.Int(keyMinIdleConns, 0)
	if c.MinIdleConns < 0 || (c.PoolSize > 0 && c.MinIdleConns > c.PoolSize) {
		r.Fail(keyMinIdleConns, fmt.Sprintf("must be between 0 and %s, got %d", keyPoolSize, c.MinIdleConns))
	}
	c.PoolTimeout = r.Duration(keyPoolTimeout, 0, time.Millisecond)
	if c.PoolTimeout < 0 {
		r.Fail(keyPoolTimeout, "must not be negative, got "+c.PoolTimeout.String())
	}
	c.IdleTimeout = orDisabled(r.Duration(keyIdleTimeout, 0, time.Millisecond))
	c.MaxConnAge = r.Duration(keyMaxConnAge, 0, time.Millisecond)
	if c.MaxConnAge < 0 {
		r.Fail(keyMaxConnAge, "must not be negative, got "+c.MaxConnAge.String())
	}
	return c
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

// Options returns the go-redis client options for c.
func (c Config) Options() *goredis.Options {
	return &goredis.Options{
		Addr:            c.Addr,
		Username:        c.Username,
		Password:        c.Password,
		DB:              c.DB,
		TLSConfig:       c.TLS,
		MaxRetries:      c.MaxRetries,
		MinRetryBackoff: c.MinRetryBackoff,
		MaxRetryBackoff: c.MaxRetryBackoff,
		DialTimeout:     c.DialTimeout,
		// One dial per attempt: maxRetries is the one retry policy, so a
		// request to a Redis that is down fails after maxRetries quick
		// attempts instead of go-redis's five dials per attempt.
		DialerRetries:   1,
		ReadTimeout:     c.ReadTimeout,
		WriteTimeout:    c.WriteTimeout,
		PoolSize:        c.PoolSize,
		MinIdleConns:    c.MinIdleConns,
		PoolTimeout:     c.PoolTimeout,
		ConnMaxIdleTime: c.IdleTimeout,
		ConnMaxLifetime: c.MaxConnAge,
		// Callers' deadlines bound every command.
		ContextTimeoutEnabled: true,
		// Maintenance notifications are a Redis Enterprise feature; probing
		// for them costs a round trip on every new connection.
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
}

// Wrap turns a go-redis error into a component error. where names the
// component and the operation ("state.redis \"s\": get \"k\""); closed tells
// whether the component was closed. The result names the Redis address for
// connection problems and wraps the contract's sentinel: the context's
// error, ErrClosed, or ErrUnavailable for anything that is not a definite
// error reply from the server.
func Wrap(ctx context.Context, where, addr string, closed bool, err error) error {
	switch {
	case ctx.Err() != nil:
		// The caller's deadline or cancellation, whatever the socket said.
		return fmt.Errorf("%s: %w", where, ctx.Err())
	case closed && !IsServerError(err):
		// Close pulled the connection from under the request.
		return fmt.Errorf("%s: %w", where, component.ErrClosed)
	case goredis.IsAuthError(err):
		return fmt.Errorf("%s: redis at %s rejected the credentials (check redisUsername and redisPassword): %w", where, addr, err)
	case IsServerError(err) && !transientServerError(err):
		return fmt.Errorf("%s: redis at %s: %w", where, addr, err)
	default:
		// Anything that is not a reply from the server is a transport
		// failure: refused, reset, timed out, pool exhausted.
		return fmt.Errorf("%s: %w: redis at %s: %w", where, component.ErrUnavailable, addr, err)
	}
}

// IsServerError reports whether err is an error reply from Redis.
func IsServerError(err error) bool {
	var re goredis.Error
	return errors.As(err, &re)
}

// transientServerError reports error replies that mean the server cannot
// serve right now (loading its data set, no master, busy script) rather
// than that the request is wrong.
func transientServerError(err error) bool {
	for _, p := range []string{"LOADING", "MASTERDOWN", "BUSY ", "TRYAGAIN", "CLUSTERDOWN"} {
		if goredis.HasErrorPrefix(err, p) {
			return true
		}
	}
	return goredis.IsMaxClientsError(err)
}
