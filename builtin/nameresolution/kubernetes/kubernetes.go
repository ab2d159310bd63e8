// Package kubernetes is Dapr's Kubernetes name resolver: an app id names the
// Kubernetes Service "<id>-dapr" that the Dapr operator (or wapr's
// equivalent) creates for the app's sidecars, so the address is a cluster DNS
// name and the cluster's DNS and Service load balancing do the rest.
//
// Resolve returns one address, "<id>-dapr.<namespace>.svc.<clusterDomain>:<port>",
// without looking it up: the caller dials the name, and an unknown app id
// shows up as a DNS failure when dialling, not as ErrNotFound here.
//
//   - namespace is the request's, else the sidecar's Instance.Namespace (the
//     NAMESPACE environment variable), else "default";
//   - port is the configured port, else the sidecar's own
//     Instance.InternalPort (every sidecar of a cluster listens on the same
//     one), else 50002, Dapr's internal gRPC port.
//
// # Configuration
//
// spec.nameResolution.configuration (key names are matched
// case-insensitively):
//
//	clusterDomain  the cluster's DNS domain; default cluster.local
//	template       a Go text/template that renders the whole address,
//	               over {{.ID}}, {{.Namespace}} and {{.Port}}, for example
//	               "{{.ID}}-dapr.{{.Namespace}}.internal:{{.Port}}"; when set,
//	               clusterDomain is not used (as in Dapr, where the two are
//	               documented as mutually exclusive). Dapr's {{.Data}} is not
//	               offered: wapr's requests carry no metadata for it.
//	port           the port of the other sidecars (wapr's addition), 1..65535
//
// The template is parsed and tried at Init, so a syntax error, an unknown
// field or output that is not host:port is reported there as a
// *component.ConfigError.
//
// A Resolver is safe for concurrent use after Init. Close does nothing.
package kubernetes

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"text/template"

	"github.com/wapr-dev/wapr/builtin/internal/nrconfig"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/nameresolution"
)

// Configuration keys and defaults; see the package comment.
const (
	keyClusterDomain = "clusterDomain"
	keyTemplate      = "template"
	keyPort          = "port"

	defaultClusterDomain = "cluster.local"
	defaultNamespace     = "default"
	defaultPort          = 50002
)

const errPrefix = "nameresolution.kubernetes: "

var _ nameresolution.Resolver = (*resolver)(nil)

type resolver struct {
	cfg config
	ns  string // the namespace for requests without one
}

// config is the parsed configuration, immutable after parseConfig.
type config struct {
	clusterDomain string
	tmpl          *template.Template // nil: the Dapr format with clusterDomain
	port          int                // 0: Instance.InternalPort, else defaultPort
}

// templateData is what a template sees.
type templateData struct {
	ID        string
	Namespace string
	Port      int
}

// New returns a resolver with the default configuration. It has no side
// effects.
func New() nameresolution.Resolver {
	return &resolver{cfg: config{clusterDomain: defaultClusterDomain}, ns: defaultNamespace}
}

func (r *resolver) Init(_ context.Context, md nameresolution.Metadata) error {
	cfg, err := parseConfig(md.Configuration)
	if err != nil {
		return fmt.Errorf(errPrefix+"%w", err)
	}
	if cfg.port == 0 {
		cfg.port = defaultPort
		if p := md.Instance.InternalPort; p > 0 && p <= 65535 {
			cfg.port = p
		}
	}
	r.cfg = cfg
	r.ns = defaultNamespace
	if md.Instance.Namespace != "" {
		r.ns = md.Instance.Namespace
	}
	return nil
}

func (r *resolver) Resolve(_ context.Context, req nameresolution.Request) ([]string, error) {
	ns := req.Namespace
	if ns == "" {
		ns = r.ns
	}
	if problem := nrconfig.LabelProblem(req.ID); problem != "" {
		return nil, fmt.Errorf(errPrefix+"app id %q %s: %w", req.ID, problem, component.ErrInvalidArgument)
	}
	if problem := nrconfig.LabelProblem(ns); problem != "" {
		return nil, fmt.Errorf(errPrefix+"namespace %q %s: %w", ns, problem, component.ErrInvalidArgument)
	}
	if r.cfg.tmpl == nil {
		return []string{req.ID + "-dapr." + ns + ".svc." + r.cfg.clusterDomain + ":" + strconv.Itoa(r.cfg.port)}, nil
	}
	addr, err := render(r.cfg.tmpl, templateData{ID: req.ID, Namespace: ns, Port: r.cfg.port})
	if err != nil {
		return nil, fmt.Errorf(errPrefix+"app id %q: %w", req.ID, err)
	}
	return []string{addr}, nil
}

// Close does nothing; it may be called any number of times.
func (r *resolver) Close(context.Context) error { return nil }

// parseConfig reads every key, applies the defaults and reports every problem
// at once as a *component.ConfigError. port stays 0 when not configured: its
// default depends on the Instance.
func parseConfig(m map[string]any) (config, error) {
	r := nrconfig.NewReader(m)
	c := config{clusterDomain: r.String(keyClusterDomain, defaultClusterDomain)}
	if problem := domainProblem(c.clusterDomain); problem != "" {
		r.Fail(keyClusterDomain, problem)
	}

	c.port = r.Int(keyPort, 0)
	if c.port < 0 || c.port > 65535 {
		r.Fail(keyPort, "must be in 1..65535, got "+strconv.Itoa(c.port))
	}

	if text := r.String(keyTemplate, ""); text != "" {
		t, err := template.New(keyTemplate).Option("missingkey=error").Parse(text)
		if err != nil {
			r.Fail(keyTemplate, "does not parse: "+err.Error())
		} else if _, err := render(t, templateData{ID: "app", Namespace: "ns", Port: 50002}); err != nil {
			// A template that fails for a plain id fails for every id.
			r.Fail(keyTemplate, "must use only {{.ID}}, {{.Namespace}} and {{.Port}} and render host:port: "+err.Error())
		} else {
			c.tmpl = t
		}
	}

	if err := r.Err(); err != nil {
		return config{}, err
	}
	return c, nil
}

// render executes t and checks that the result is host:port.
func render(t *template.Template, d templateData) (string, error) {
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return "", err
	}
	addr := strings.TrimSpace(b.String())
	if problem := nrconfig.AddressProblem(addr); problem != "" {
		return "", fmt.Errorf("the address %s", problem)
	}
	return addr, nil
}

// domainProblem checks a cluster domain: dot-separated labels.
func domainProblem(d string) string {
	for label := range strings.SplitSeq(strings.TrimSuffix(d, "."), ".") {
		if problem := nrconfig.LabelProblem(label); problem != "" {
			return "must be a DNS domain such as cluster.local, got " + strconv.Quote(d)
		}
	}
	return ""
}
