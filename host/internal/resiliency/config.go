package resiliency

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/cel-go/cel"

	"github.com/wapr-dev/wapr/host/internal/resources"
)

// Backoff kinds of a retry policy.
const (
	BackoffConstant    = "constant"
	BackoffExponential = "exponential"
)

// Defaults, daprd's (its retry and circuit breaker settings come from
// dapr/kit's retry.DefaultConfig, cenkalti/backoff's exponential defaults
// and gobreaker's zero values).
const (
	// DefaultRetryDuration is the wait between constant retries when
	// duration is not given.
	DefaultRetryDuration = 5 * time.Second
	// DefaultMaxInterval caps exponential waits when maxInterval is not given.
	DefaultMaxInterval = 60 * time.Second
	// ExponentialInitialInterval, ExponentialMultiplier and
	// ExponentialRandomization shape exponential backoff; daprd does not let
	// a Resiliency resource change them (duration is for constant only).
	ExponentialInitialInterval = 500 * time.Millisecond
	ExponentialMultiplier      = 1.5
	ExponentialRandomization   = 0.5
	// ExponentialMaxElapsed stops exponential retries once this much time
	// has passed since the first attempt, even with maxRetries -1.
	ExponentialMaxElapsed = 15 * time.Minute
	// DefaultBreakerTimeout is how long an open breaker stays open.
	DefaultBreakerTimeout = 60 * time.Second
	// DefaultEndpointBreakers bounds the breakers kept per app (one per
	// method), as daprd's circuitBreakerCacheSize default.
	DefaultEndpointBreakers = 100
)

// Retry is a retry policy: spec.policies.retries.<name>.
type Retry struct {
	Name string
	// Backoff is BackoffConstant or BackoffExponential.
	Backoff string
	// Duration is the wait between constant retries.
	Duration time.Duration
	// MaxInterval caps an exponential wait.
	MaxInterval time.Duration
	// MaxRetries is the number of retries after the first attempt; -1 retries
	// until the call's context ends (or, exponential, ExponentialMaxElapsed).
	MaxRetries int64
	// HTTPStatusCodes and GRPCStatusCodes are matching.httpStatusCodes and
	// matching.gRPCStatusCodes: when set, a failure that carries a status
	// (see StatusError) is retried only if its status is in one of the
	// ranges. Failures without a status are always retried.
	HTTPStatusCodes []CodeRange
	GRPCStatusCodes []CodeRange
}

// CodeRange is an inclusive range of status codes.
type CodeRange struct{ From, To int }

// Breaker is a circuit breaker policy: spec.policies.circuitBreakers.<name>.
// It is a template: each target gets breakers of its own.
type Breaker struct {
	Name string
	// MaxRequests is how many calls a half-open breaker lets through (0: 1).
	MaxRequests uint32
	// Interval is the cyclic period of the closed state after which the
	// counts are cleared; 0 never clears them.
	Interval time.Duration
	// Timeout is how long the breaker stays open before it half-opens.
	Timeout time.Duration
	// Trip is the CEL expression as written ("" is gobreaker's default,
	// consecutiveFailures > 5).
	Trip string
	trip cel.Program
}

// Names are the policy names a target uses ("" for none).
type Names struct {
	Timeout, Retry, CircuitBreaker string
}

// AppTarget is spec.targets.apps.<appid>.
type AppTarget struct {
	Names
	// BreakerCacheSize is circuitBreakerCacheSize: how many breakers (one per
	// method) the app keeps.
	BreakerCacheSize int
}

// ComponentTarget is spec.targets.components.<name>.
type ComponentTarget struct {
	Outbound, Inbound Names
}

// spec is one Resiliency resource decoded and checked.
type spec struct {
	res        resources.Resiliency
	timeouts   map[string]time.Duration
	retries    map[string]*Retry
	breakers   map[string]*Breaker
	apps       map[string]AppTarget
	components map[string]ComponentTarget
	// unused names the parts wapr reads but does not apply.
	unused []string
}

// failer collects the problems of one resource, each naming its field.
type failer struct {
	res  resources.Resiliency
	errs []error
}

func (f *failer) fail(field, format string, args ...any) {
	f.errs = append(f.errs, &resources.Error{
		File: f.res.File, Line: f.res.Line, Kind: "Resiliency", Name: f.res.Name,
		Field: field, Err: fmt.Errorf(format, args...),
	})
}

// decode reads one resource's spec; every problem is reported, and a
// resource with any is not used.
func decode(r resources.Resiliency) (*spec, []error) {
	f := &failer{res: r}
	s := &spec{
		res:        r,
		timeouts:   map[string]time.Duration{},
		retries:    map[string]*Retry{},
		breakers:   map[string]*Breaker{},
		apps:       map[string]AppTarget{},
		components: map[string]ComponentTarget{},
	}
	policies := f.mapping(r.Spec, "policies", "spec.policies")
	for name, v := range f.mapping(policies, "timeouts", "spec.policies.timeouts") {
		field := "spec.policies.timeouts." + name
		d, ok := f.duration(v, field)
		if ok {
			s.timeouts[name] = d
		}
	}
	for name, v := range f.mapping(policies, "retries", "spec.policies.retries") {
		if rt := f.retry(name, v, "spec.policies.retries."+name); rt != nil {
			s.retries[name] = rt
		}
	}
	for name, v := range f.mapping(policies, "circuitBreakers", "spec.policies.circuitBreakers") {
		if b := f.breaker(name, v, "spec.policies.circuitBreakers."+name); b != nil {
			s.breakers[name] = b
		}
	}
	targets := f.mapping(r.Spec, "targets", "spec.targets")
	for id, v := range f.mapping(targets, "apps", "spec.targets.apps") {
		field := "spec.targets.apps." + id
		m := f.object(v, field)
		t := AppTarget{Names: f.names(m, field), BreakerCacheSize: DefaultEndpointBreakers}
		if n, ok := f.integer(m, "circuitBreakerCacheSize", field); ok && n > 0 {
			t.BreakerCacheSize = int(n)
		}
		f.unknown(m, field, "timeout", "retry", "circuitBreaker", "circuitBreakerCacheSize")
		s.apps[id] = t
	}
	for name, v := range f.mapping(targets, "components", "spec.targets.components") {
		field := "spec.targets.components." + name
		m := f.object(v, field)
		f.unknown(m, field, "outbound", "inbound")
		out := f.mapping(m, "outbound", field+".outbound")
		in := f.mapping(m, "inbound", field+".inbound")
		t := ComponentTarget{Outbound: f.names(out, field+".outbound"), Inbound: f.names(in, field+".inbound")}
		f.unknown(out, field+".outbound", "timeout", "retry", "circuitBreaker")
		f.unknown(in, field+".inbound", "timeout", "retry", "circuitBreaker")
		s.components[name] = t
	}
	if v, ok := lookup(targets, "actors"); ok && v != nil {
		s.unused = append(s.unused, "spec.targets.actors")
	}
	f.unknown(r.Spec, "spec", "policies", "targets")
	f.unknown(policies, "spec.policies", "timeouts", "retries", "circuitBreakers")
	f.unknown(targets, "spec.targets", "apps", "components", "actors")
	return s, f.errs
}

// lookup finds key in m, case-insensitively (an exact match wins), as Dapr
// decodes these resources through encoding/json.
func lookup(m map[string]any, key string) (any, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}

// mapping reads an optional mapping field of m.
func (f *failer) mapping(m map[string]any, key, field string) map[string]any {
	v, ok := lookup(m, key)
	if !ok || v == nil {
		return nil
	}
	return f.object(v, field)
}

func (f *failer) object(v any, field string) map[string]any {
	if v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		f.fail(field, "must be a mapping, not %s", describe(v))
		return nil
	}
	return m
}

// text reads an optional scalar field as text; numbers and booleans are
// taken as written, as daprd's YAML decoder turns them into strings.
func (f *failer) text(m map[string]any, key, field string) (string, bool) {
	v, ok := lookup(m, key)
	if !ok || v == nil {
		return "", false
	}
	switch t := v.(type) {
	case string:
		return t, true
	case int, int64, float64, bool:
		return fmt.Sprint(t), true
	}
	f.fail(field, "must be a string, not %s", describe(v))
	return "", false
}

func (f *failer) integer(m map[string]any, key, field string) (int64, bool) {
	v, ok := lookup(m, key)
	if !ok || v == nil {
		return 0, false
	}
	field += "." + key
	switch t := v.(type) {
	case int:
		return int64(t), true
	case int64:
		return t, true
	case float64:
		if t == math.Trunc(t) && math.Abs(t) < 1<<53 {
			return int64(t), true
		}
	case string:
		if n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64); err == nil {
			return n, true
		}
	}
	f.fail(field, "must be an integer, not %s", describe(v))
	return 0, false
}

// duration reads a duration as daprd does (see ParseDuration).
func (f *failer) duration(v any, field string) (time.Duration, bool) {
	var s string
	switch t := v.(type) {
	case string:
		s = t
	case int, int64:
		s = fmt.Sprint(t)
	case float64:
		s = strconv.FormatFloat(t, 'f', -1, 64)
	default:
		f.fail(field, "must be a duration such as 5s or 500ms, not %s", describe(v))
		return 0, false
	}
	d, err := ParseDuration(s)
	if err != nil {
		f.fail(field, "%v", err)
		return 0, false
	}
	return d, true
}

// ParseDuration reads a duration as daprd reads those of a Resiliency
// resource: a whole number is milliseconds ("500" is 500ms), anything else
// is Go's duration syntax ("5s", "1m30s", "1.5h", "250ms"). Negative
// durations are refused.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty duration")
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("negative duration %q", s)
		}
		if n > math.MaxInt64/int64(time.Millisecond) {
			return 0, fmt.Errorf("duration %q is too long", s)
		}
		return time.Duration(n) * time.Millisecond, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: use a number of milliseconds or Go's form such as 5s, 500ms, 1m30s", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration %q", s)
	}
	return d, nil
}

func (f *failer) durationField(m map[string]any, key, field string) (time.Duration, bool) {
	v, ok := lookup(m, key)
	if !ok || v == nil {
		return 0, false
	}
	return f.duration(v, field+"."+key)
}

func (f *failer) retry(name string, v any, field string) *Retry {
	m := f.object(v, field)
	n := len(f.errs)
	r := &Retry{Name: name, Backoff: BackoffConstant, Duration: DefaultRetryDuration, MaxInterval: DefaultMaxInterval, MaxRetries: -1}
	if p, ok := f.text(m, "policy", field+".policy"); ok {
		switch strings.ToLower(strings.TrimSpace(p)) {
		case BackoffConstant:
		case BackoffExponential:
			r.Backoff = BackoffExponential
		default:
			f.fail(field+".policy", "%q is neither constant nor exponential", p)
		}
	}
	if d, ok := f.durationField(m, "duration", field); ok {
		r.Duration = d
	}
	if d, ok := f.durationField(m, "maxInterval", field); ok {
		r.MaxInterval = d
	}
	if n, ok := f.integer(m, "maxRetries", field); ok {
		if n < -1 {
			f.fail(field+".maxRetries", "must be -1 (retry forever) or more, not %d", n)
		}
		r.MaxRetries = n
	}
	if match := f.mapping(m, "matching", field+".matching"); match != nil {
		if s, ok := f.text(match, "httpStatusCodes", field+".matching.httpStatusCodes"); ok {
			codes, err := parseCodes(s, 100, 599)
			if err != nil {
				f.fail(field+".matching.httpStatusCodes", "%v", err)
			}
			r.HTTPStatusCodes = codes
		}
		if s, ok := f.text(match, "gRPCStatusCodes", field+".matching.gRPCStatusCodes"); ok {
			codes, err := parseCodes(s, 0, 16)
			if err != nil {
				f.fail(field+".matching.gRPCStatusCodes", "%v", err)
			}
			r.GRPCStatusCodes = codes
		}
		f.unknown(match, field+".matching", "httpStatusCodes", "gRPCStatusCodes")
	}
	f.unknown(m, field, "policy", "duration", "maxInterval", "maxRetries", "matching")
	if len(f.errs) > n {
		return nil
	}
	return r
}

// parseCodes reads Dapr's status code list: comma-separated codes and
// ranges ("500,502-504"), each within [lo, hi].
func parseCodes(s string, lo, hi int) ([]CodeRange, error) {
	var out []CodeRange
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		from, to, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(strings.TrimSpace(from))
		if err != nil {
			return nil, fmt.Errorf("%q is not a code or a range of codes such as 500-504", part)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(strings.TrimSpace(to)); err != nil {
				return nil, fmt.Errorf("%q is not a code or a range of codes such as 500-504", part)
			}
		}
		if a < lo || a > hi || b < lo || b > hi {
			return nil, fmt.Errorf("%q: codes must be between %d and %d", part, lo, hi)
		}
		if b < a {
			return nil, fmt.Errorf("%q: the range ends before it starts", part)
		}
		out = append(out, CodeRange{a, b})
	}
	return out, nil
}

func (f *failer) breaker(name string, v any, field string) *Breaker {
	m := f.object(v, field)
	n := len(f.errs)
	b := &Breaker{Name: name, Timeout: DefaultBreakerTimeout}
	if mr, ok := f.integer(m, "maxRequests", field); ok {
		if mr < 0 || mr > math.MaxUint32 {
			f.fail(field+".maxRequests", "must be between 0 and %d, not %d", uint32(math.MaxUint32), mr)
		}
		b.MaxRequests = uint32(mr)
	}
	if d, ok := f.durationField(m, "interval", field); ok {
		b.Interval = d
	}
	if d, ok := f.durationField(m, "timeout", field); ok && d > 0 {
		b.Timeout = d
	}
	if t, ok := f.text(m, "trip", field+".trip"); ok && strings.TrimSpace(t) != "" {
		prg, err := compileTrip(t)
		if err != nil {
			f.fail(field+".trip", "%v", err)
		}
		b.Trip, b.trip = t, prg
	}
	f.unknown(m, field, "maxRequests", "interval", "timeout", "trip")
	if len(f.errs) > n {
		return nil
	}
	return b
}

// tripVariables are the counts a trip expression may read: gobreaker's
// Counts, under daprd's names.
var tripVariables = []string{"requests", "totalSuccesses", "totalFailures", "consecutiveSuccesses", "consecutiveFailures"}

// tripEnv is built once: a cel.Env costs hundreds of microseconds.
var tripEnv = sync.OnceValues(func() (*cel.Env, error) {
	opts := []cel.EnvOption{cel.CrossTypeNumericComparisons(true)}
	for _, v := range tripVariables {
		opts = append(opts, cel.Variable(v, cel.IntType))
	}
	return cel.NewEnv(opts...)
})

// compileTrip compiles a trip expression; it must be a bool over the
// counts. daprd declares any name it meets (an unknown one makes the
// expression never true); wapr refuses it, so a typo is found at load.
func compileTrip(expr string) (cel.Program, error) {
	env, err := tripEnv()
	if err != nil {
		return nil, err
	}
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		return nil, fmt.Errorf("invalid expression %q (it may use %s): %v", expr, strings.Join(tripVariables, ", "), iss.Err())
	}
	if ast.OutputType() != cel.BoolType {
		return nil, fmt.Errorf("expression %q is %s, not a bool (for example consecutiveFailures >= 5)", expr, ast.OutputType())
	}
	return env.Program(ast, cel.EvalOptions(cel.OptOptimize))
}

func (f *failer) names(m map[string]any, field string) Names {
	var n Names
	n.Timeout, _ = f.text(m, "timeout", field+".timeout")
	n.Retry, _ = f.text(m, "retry", field+".retry")
	n.CircuitBreaker, _ = f.text(m, "circuitBreaker", field+".circuitBreaker")
	return n
}

// unknown reports keys of m that are none of known. daprd ignores them; a
// misspelt key would silently lose a policy, so wapr refuses the resource.
func (f *failer) unknown(m map[string]any, field string, known ...string) {
	var bad []string
	for k := range m {
		if !slices.ContainsFunc(known, func(s string) bool { return strings.EqualFold(s, k) }) {
			bad = append(bad, k)
		}
	}
	sort.Strings(bad)
	for _, k := range bad {
		f.fail(field+"."+k, "unknown field (known: %s)", strings.Join(known, ", "))
	}
}

func describe(v any) string {
	switch t := v.(type) {
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		return strconv.Quote(t)
	case nil:
		return "null"
	}
	return fmt.Sprint(v)
}
