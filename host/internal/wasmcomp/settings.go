package wasmcomp

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Annotations (metadata.annotations of the Component) that tune a Wasm
// component. Dapr ignores them, so the same YAML works on both.
const (
	AnnotationRuntime          = "wapr.dev/runtime"            // "wasm" or "native": pin what serves the component
	AnnotationMemoryLimit      = "wapr.dev/memory-limit"       // per instance, e.g. "64Mi" (default 64 MiB)
	AnnotationCallTimeout      = "wapr.dev/call-timeout"       // per call, e.g. "5s" (default 5s)
	AnnotationPoolSize         = "wapr.dev/pool-size"          // instances per component (default 8)
	AnnotationTrusted          = "wapr.dev/trusted"            // "true": no interruption (faster; a runaway loop can hang the host)
	AnnotationAllowHosts       = "wapr.dev/allow-hosts"        // extra host:port entries for sockets and HTTP
	AnnotationMaxResponseBytes = "wapr.dev/max-response-bytes" // cap on one call's output (default 16 MiB)
	AnnotationMaxSockets       = "wapr.dev/max-sockets"        // open sockets per instance (default 16)
)

// Settings are the limits of one Wasm component.
type Settings struct {
	MemoryLimitBytes uint64
	CallTimeout      time.Duration
	PoolSize         int
	Trusted          bool
	AllowHosts       []string
	MaxResponseBytes int
	MaxSockets       int
	// MaxLogBytes bounds what one call may log.
	MaxLogBytes int
	// RecycleAfterCalls replaces an instance after this many calls, since a
	// guest's heap never shrinks.
	RecycleAfterCalls int
}

// DefaultSettings are the limits when no annotation says otherwise.
func DefaultSettings() Settings {
	return Settings{
		MemoryLimitBytes:  64 << 20,
		CallTimeout:       5 * time.Second,
		PoolSize:          8,
		MaxResponseBytes:  16 << 20,
		MaxSockets:        16,
		MaxLogBytes:       64 << 10,
		RecycleAfterCalls: 1_000_000,
	}
}

// ParseSettings reads the wapr.dev/ annotations, reporting every problem.
func ParseSettings(ann map[string]string) (Settings, error) {
	s := DefaultSettings()
	var problems []string
	fail := func(key, msg string) { problems = append(problems, key+": "+msg) }
	if v, ok := ann[AnnotationMemoryLimit]; ok {
		n, err := parseSize(v)
		switch {
		case err != nil:
			fail(AnnotationMemoryLimit, err.Error())
		case n < 1<<20 || n > 4<<30:
			fail(AnnotationMemoryLimit, "must be between 1Mi and 4Gi")
		default:
			s.MemoryLimitBytes = n
		}
	}
	if v, ok := ann[AnnotationCallTimeout]; ok {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			fail(AnnotationCallTimeout, fmt.Sprintf("must be a positive duration such as 5s, got %q", v))
		} else {
			s.CallTimeout = d
		}
	}
	intAnn := func(key string, dst *int, lo, hi int) {
		v, ok := ann[key]
		if !ok {
			return
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			fail(key, fmt.Sprintf("must be an integer from %d to %d, got %q", lo, hi, v))
			return
		}
		*dst = n
	}
	intAnn(AnnotationPoolSize, &s.PoolSize, 1, 1024)
	intAnn(AnnotationMaxSockets, &s.MaxSockets, 1, 4096)
	if v, ok := ann[AnnotationMaxResponseBytes]; ok {
		n, err := parseSize(v)
		if err != nil || n == 0 || n > 1<<30 {
			fail(AnnotationMaxResponseBytes, fmt.Sprintf("must be a size up to 1Gi, got %q", v))
		} else {
			s.MaxResponseBytes = int(n)
		}
	}
	if v, ok := ann[AnnotationTrusted]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			fail(AnnotationTrusted, fmt.Sprintf("must be true or false, got %q", v))
		}
		s.Trusted = b
	}
	if v, ok := ann[AnnotationAllowHosts]; ok {
		for _, h := range strings.Split(v, ",") {
			if h = strings.TrimSpace(h); h != "" {
				s.AllowHosts = append(s.AllowHosts, h)
			}
		}
	}
	if len(problems) > 0 {
		return s, fmt.Errorf("annotations: %s", strings.Join(problems, "; "))
	}
	return s, nil
}

// parseSize reads "1048576", "64Mi", "1Gi", "512Ki".
func parseSize(v string) (uint64, error) {
	mult := uint64(1)
	for suffix, m := range map[string]uint64{"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30} {
		if strings.HasSuffix(v, suffix) {
			v, mult = strings.TrimSuffix(v, suffix), m
			break
		}
	}
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size such as 64Mi", v)
	}
	if n > math.MaxUint64/mult {
		return 0, fmt.Errorf("%q is too large", v)
	}
	return n * mult, nil
}
