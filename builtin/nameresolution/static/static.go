// Package static is a name resolver with a fixed table: the configuration
// lists, per app id, the addresses of its sidecars. It suits tests, a few
// hand-placed hosts and an edge where discovery is not wanted. It is not one
// of Dapr's resolvers; wapr offers it under the name "static".
//
// # Configuration
//
// spec.nameResolution.configuration (key names are matched
// case-insensitively; app ids and namespaces are matched exactly):
//
//	apps:
//	  orders: ["10.0.0.5:50002", "10.0.0.6:50002"]   # a list, or
//	  billing: billing.internal:50002                  # a single address
//	  orders.prod: ["10.1.0.5:50002"]                  # "id.namespace"
//
// apps is required (an empty map is allowed). Every address must be
// host:port with a port in 1..65535; all are checked at Init.
//
// # Lookup
//
// A request's namespace is its own, else the sidecar's Instance.Namespace.
// When that is set the key "id.namespace" is tried first, then the bare "id",
// which therefore serves every namespace the table does not list
// separately. Without a namespace only "id" is tried. No entry yields an
// error wrapping nameresolution.ErrNotFound that names the id.
//
// A Resolver is safe for concurrent use after Init; the table never changes.
// Resolve returns a fresh slice the caller owns.
package static

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/wapr-dev/wapr/builtin/internal/nrconfig"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/nameresolution"
)

const keyApps = "apps"

const errPrefix = "nameresolution.static: "

var _ nameresolution.Resolver = (*resolver)(nil)

type resolver struct {
	namespace string              // the sidecar's own, for requests without one
	apps      map[string][]string // "id" or "id.namespace" -> addresses; read-only after Init
}

// New returns a resolver with an empty table. It has no side effects; Init
// loads the table.
func New() nameresolution.Resolver { return &resolver{} }

func (r *resolver) Init(_ context.Context, md nameresolution.Metadata) error {
	apps, err := parseConfig(md.Configuration)
	if err != nil {
		return fmt.Errorf(errPrefix+"%w", err)
	}
	r.apps = apps
	r.namespace = md.Instance.Namespace
	return nil
}

func (r *resolver) Resolve(_ context.Context, req nameresolution.Request) ([]string, error) {
	if req.ID == "" {
		return nil, fmt.Errorf(errPrefix+"an app id is required: %w", component.ErrInvalidArgument)
	}
	ns := req.Namespace
	if ns == "" {
		ns = r.namespace
	}
	if ns != "" {
		if addrs, ok := r.apps[req.ID+"."+ns]; ok {
			return slices.Clone(addrs), nil
		}
	}
	if addrs, ok := r.apps[req.ID]; ok {
		return slices.Clone(addrs), nil
	}
	if ns != "" {
		return nil, fmt.Errorf(errPrefix+"%w %q in namespace %q", nameresolution.ErrNotFound, req.ID, ns)
	}
	return nil, fmt.Errorf(errPrefix+"%w %q", nameresolution.ErrNotFound, req.ID)
}

// Close does nothing; it may be called any number of times.
func (r *resolver) Close(context.Context) error { return nil }

// parseConfig reads the apps table, reporting every problem at once as a
// *component.ConfigError.
func parseConfig(m map[string]any) (map[string][]string, error) {
	r := nrconfig.NewReader(m)
	apps := map[string][]string{}
	v, ok := r.Value(keyApps)
	if !ok {
		r.Fail(keyApps, "is required: a map from app id to its sidecars' addresses")
		return nil, r.Err()
	}
	table, ok := v.(map[string]any)
	if !ok {
		r.Fail(keyApps, "must be a map from app id to addresses, got "+nrconfig.Describe(v))
		return nil, r.Err()
	}
	for key, val := range table {
		field := keyApps + "." + key
		if problem := keyProblem(key); problem != "" {
			r.Fail(field, problem)
			continue
		}
		var raw []any
		switch x := val.(type) {
		case string:
			raw = []any{x}
		case []any:
			raw = x
		default:
			r.Fail(field, "must be an address or a list of addresses, got "+nrconfig.Describe(val))
			continue
		}
		if len(raw) == 0 {
			r.Fail(field, "must list at least one address")
			continue
		}
		addrs := make([]string, 0, len(raw))
		for i, a := range raw {
			s, isString := a.(string)
			if !isString {
				r.Fail(field+"["+strconv.Itoa(i)+"]", "must be a host:port string, got "+nrconfig.Describe(a))
				continue
			}
			s = strings.TrimSpace(s)
			if problem := nrconfig.AddressProblem(s); problem != "" {
				r.Fail(field+"["+strconv.Itoa(i)+"]", problem)
				continue
			}
			addrs = append(addrs, s)
		}
		apps[key] = addrs
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	return apps, nil
}

// keyProblem checks a table key: "id" or "id.namespace", neither part empty.
func keyProblem(key string) string {
	id, ns, namespaced := strings.Cut(key, ".")
	switch {
	case id == "":
		return "must start with an app id"
	case namespaced && (ns == "" || strings.Contains(ns, ".")):
		return `must be "id" or "id.namespace"`
	case strings.ContainsFunc(key, func(c rune) bool { return c <= ' ' || c == ':' || c == '/' }):
		return "must not contain spaces, ':' or '/'"
	}
	return ""
}
