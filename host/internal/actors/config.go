package actors

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/wapr-dev/wapr/host/internal/api"
)

// daprd's defaults (pkg/actors/hostconfig).
const (
	defaultIdleTimeout   = time.Hour
	defaultScanInterval  = 30 * time.Second
	defaultDrainTimeout  = 30 * time.Second
	defaultMaxStackDepth = 32
)

// Config is what the app says of its actors in GET /dapr/config.
type Config struct {
	Entities        []string
	IdleTimeout     time.Duration
	ScanInterval    time.Duration
	DrainTimeout    time.Duration
	DrainRebalanced bool
	Reentrancy      Reentrancy
	// PerType holds the settings of the types entitiesConfig names, which
	// replace the app-wide ones for them.
	PerType map[string]TypeConfig
}

// TypeConfig is what an entitiesConfig entry sets for its types. As in
// daprd, a setting the entry leaves out takes daprd's default, not the
// app-wide value: an entry without reentrancy turns it off for its types.
type TypeConfig struct {
	IdleTimeout time.Duration
	Reentrancy  Reentrancy
}

// Reentrancy is a reentrancy setting, app-wide or of a type.
type Reentrancy struct {
	Enabled       bool
	MaxStackDepth int
}

// reentrancyConfig is a reentrancy setting as /dapr/config writes it.
type reentrancyConfig struct {
	Enabled       bool `json:"enabled"`
	MaxStackDepth *int `json:"maxStackDepth"`
}

func (rc reentrancyConfig) read() Reentrancy {
	r := Reentrancy{Enabled: rc.Enabled, MaxStackDepth: defaultMaxStackDepth}
	if rc.MaxStackDepth != nil {
		r.MaxStackDepth = *rc.MaxStackDepth
	}
	return r
}

// appConfig is GET /dapr/config's answer as daprd reads it.
type appConfig struct {
	Entities                []string         `json:"entities"`
	ActorIdleTimeout        string           `json:"actorIdleTimeout"`
	ActorScanInterval       string           `json:"actorScanInterval"`
	DrainOngoingCallTimeout string           `json:"drainOngoingCallTimeout"`
	DrainRebalancedActors   *bool            `json:"drainRebalancedActors"`
	Reentrancy              reentrancyConfig `json:"reentrancy"`
	EntitiesConfig          []struct {
		Entities         []string         `json:"entities"`
		ActorIdleTimeout string           `json:"actorIdleTimeout"`
		Reentrancy       reentrancyConfig `json:"reentrancy"`
	} `json:"entitiesConfig"`
}

// FetchConfig asks the app for its actor configuration. An app that does
// not serve /dapr/config (404) hosts no actors: that is no error.
func FetchConfig(ctx context.Context, app api.AppChannel) (Config, error) {
	res, err := app.Call(ctx, &api.AppRequest{Method: "GET", Path: "/dapr/config"})
	if err != nil {
		return Config{}, fmt.Errorf("GET /dapr/config: %w", err)
	}
	if res.Status == 404 || len(res.Body) == 0 {
		return ParseConfig(nil)
	}
	if res.Status/100 != 2 {
		return Config{}, fmt.Errorf("GET /dapr/config answered %d", res.Status)
	}
	return ParseConfig(res.Body)
}

// ParseConfig reads a /dapr/config answer, applying daprd's defaults; nil
// is an app with no actors.
func ParseConfig(body []byte) (Config, error) {
	c := Config{
		IdleTimeout: defaultIdleTimeout, ScanInterval: defaultScanInterval,
		DrainTimeout: defaultDrainTimeout, DrainRebalanced: true,
		Reentrancy: Reentrancy{MaxStackDepth: defaultMaxStackDepth},
	}
	if len(body) == 0 {
		return c, nil
	}
	var in appConfig
	if err := json.Unmarshal(body, &in); err != nil {
		return Config{}, fmt.Errorf("GET /dapr/config: %w", err)
	}
	c.Entities = in.Entities
	var errs []error
	dur := func(name, s string, into *time.Duration) {
		if s == "" {
			return
		}
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s %q is not a positive duration", name, s))
			return
		}
		*into = d
	}
	dur("actorIdleTimeout", in.ActorIdleTimeout, &c.IdleTimeout)
	dur("actorScanInterval", in.ActorScanInterval, &c.ScanInterval)
	dur("drainOngoingCallTimeout", in.DrainOngoingCallTimeout, &c.DrainTimeout)
	if in.DrainRebalancedActors != nil {
		c.DrainRebalanced = *in.DrainRebalancedActors
	}
	c.Reentrancy = in.Reentrancy.read()
	for _, ec := range in.EntitiesConfig {
		tc := TypeConfig{IdleTimeout: defaultIdleTimeout, Reentrancy: ec.Reentrancy.read()}
		dur("entitiesConfig actorIdleTimeout", ec.ActorIdleTimeout, &tc.IdleTimeout)
		for _, e := range ec.Entities {
			if c.PerType == nil {
				c.PerType = map[string]TypeConfig{}
			}
			c.PerType[e] = tc
		}
	}
	if len(errs) > 0 {
		return Config{}, fmt.Errorf("GET /dapr/config: %v", errs)
	}
	return c, nil
}

func (c Config) idleTimeout(actorType string) time.Duration {
	if tc, ok := c.PerType[actorType]; ok {
		return tc.IdleTimeout
	}
	return c.IdleTimeout
}

func (c Config) reentrancy(actorType string) Reentrancy {
	if tc, ok := c.PerType[actorType]; ok {
		return tc.Reentrancy
	}
	return c.Reentrancy
}
