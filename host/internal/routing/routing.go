// Package routing picks the app route for a CloudEvent the way Dapr does for
// v2 subscriptions: CEL rules evaluated in order, the first that holds wins,
// else the default path.
//
// Expressions are written against one variable, `event`, holding the
// CloudEvent as a map (id, source, type, specversion, datacontenttype, data,
// topic, pubsubname, subject, time and any extension attributes), e.g.
//
//	event.type == "order.created"
//	event.data.amount > 100
//	event.source.startsWith("checkout/")
//
// Expressions use github.com/google/cel-go, the library Dapr uses, so rules
// written for Dapr mean the same here.
package routing

import (
	"fmt"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/interpreter"

	"github.com/wapr-dev/wapr/host/internal/resources"
)

// Router routes events for one subscription. It is immutable after New and
// safe for concurrent use.
type Router struct {
	rules       []rule
	defaultPath string
}

// rule is a compiled resources.Rule.
type rule struct {
	path    string
	program cel.Program // nil: the rule always matches
}

// env is the CEL environment every rule compiles in. Building one costs
// hundreds of microseconds, so it is built once per process; a cel.Env is
// safe for concurrent use.
var env = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		// `event` is dyn rather than map(string, dyn): field selection and
		// indexing on dyn are checked at evaluation, and JSON data nests
		// arbitrarily.
		cel.Variable("event", cel.DynType),
		// JSON numbers decode as float64 (CEL double) while rules are
		// written with integer literals. On dyn values cel-go compares
		// mixed numbers at run time anyway (`event.data.amount > 100`);
		// this also lets statically typed mixes such as
		// `double(event.data.amount) > 100` compile.
		cel.CrossTypeNumericComparisons(true),
	)
})

// New compiles rules, in order, and returns a Router that falls back to
// defaultPath. An empty (or blank) Match always matches, so rules after it
// are never reached. A rule that fails to compile, does not yield a bool, or
// has no path is an error naming its index and expression. Unlike Dapr, which
// declares any unknown identifier as dyn, only `event` exists: a typo such as
// `evnt.type` fails here, at load, instead of failing every delivery.
func New(rules []resources.Rule, defaultPath string) (*Router, error) {
	e, err := env()
	if err != nil {
		return nil, fmt.Errorf("routing: building the CEL environment: %w", err)
	}
	r := &Router{rules: make([]rule, 0, len(rules)), defaultPath: defaultPath}
	for i, rr := range rules {
		if rr.Path == "" {
			return nil, fmt.Errorf("routing: rule %d (%q): path is required", i, rr.Match)
		}
		compiled := rule{path: rr.Path}
		if strings.TrimSpace(rr.Match) != "" {
			ast, iss := e.Compile(rr.Match)
			if iss.Err() != nil {
				return nil, fmt.Errorf("routing: rule %d (%q): %w", i, rr.Match, iss.Err())
			}
			// With `event` dyn most expressions type as dyn and are checked
			// when they run; those that are surely not bool are refused now.
			if t := ast.OutputType(); !t.IsExactType(types.BoolType) && !t.IsExactType(types.DynType) {
				return nil, fmt.Errorf("routing: rule %d (%q): must be a boolean expression, not %s", i, rr.Match, t)
			}
			prg, err := e.Program(ast, cel.EvalOptions(cel.OptOptimize))
			if err != nil {
				return nil, fmt.Errorf("routing: rule %d (%q): %w", i, rr.Match, err)
			}
			compiled.program = prg
		}
		r.rules = append(r.rules, compiled)
	}
	return r, nil
}

// Route returns the path of the first rule whose expression is true for
// event, else the default path; ok is false when nothing matched and there is
// no default (Dapr then drops the message). An expression that fails to
// evaluate (a missing field, a type mismatch) or yields a non-bool counts as
// not matching, so one odd event cannot block the topic. Route does not keep
// or modify event.
func (r *Router) Route(event map[string]any) (path string, ok bool) {
	vars := activation{event: event}
	for i := range r.rules {
		ru := &r.rules[i]
		if ru.program == nil {
			return ru.path, true
		}
		out, _, err := ru.program.Eval(vars)
		if err == nil && out == types.True {
			return ru.path, true
		}
	}
	if r.defaultPath != "" {
		return r.defaultPath, true
	}
	return "", false
}

// activation binds `event` for one evaluation. It is a struct holding only a
// map, so storing it in an interface does not allocate, unlike the
// map[string]any that cel.Program.Eval otherwise takes.
type activation struct {
	event map[string]any
}

// ResolveName implements interpreter.Activation.
func (a activation) ResolveName(name string) (any, bool) {
	if name != "event" || a.event == nil {
		return nil, false
	}
	return a.event, true
}

// Parent implements interpreter.Activation: there is no enclosing scope.
func (a activation) Parent() interpreter.Activation { return nil }
