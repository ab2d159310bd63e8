package resources

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

const kindConfiguration = "Configuration"

// Configuration is the part of a Dapr Configuration resource (the file given
// with --config) that wapr honours so far.
type Configuration struct {
	// Name is metadata.name.
	Name string
	// NameResolution is spec.nameResolution; its Component is empty when
	// the file does not choose a resolver.
	NameResolution NameResolution
	// SecretScopes is spec.secrets.scopes, in file order.
	SecretScopes []SecretScope
	// Tracing is spec.tracing; its zero value records no trace.
	Tracing Tracing
	// APILogging is spec.logging.apiLogging.
	APILogging APILogging
	// Metric is spec.metric.
	Metric Metric
	// Unused names, in file order, the parts of spec that wapr accepts but
	// does not act on yet ("spec.tracing", "spec.mtls", "spec.features", …),
	// for the sidecar to say so at start: a Configuration written for daprd,
	// such as the one `dapr init` writes, loads rather than failing.
	Unused []string
	// File is the file the configuration was read from, for messages.
	File string
}

// NameResolution is spec.nameResolution: which resolver finds other apps'
// sidecars, and its settings.
type NameResolution struct {
	Component string
	Version   string
	// Configuration is spec.nameResolution.configuration decoded from YAML
	// (map[string]any, []any and scalars); nil when absent.
	Configuration map[string]any
}

// APILogging is spec.logging.apiLogging: whether the sidecar logs every
// API call when --enable-api-logging does not say (Enabled), and how.
type APILogging struct {
	Enabled bool
	// ObfuscateURLs logs an HTTP call's route rather than its path, which
	// may hold keys and other values.
	ObfuscateURLs bool
	// OmitHealthChecks leaves the health checks out.
	OmitHealthChecks bool
}

// SecretScope is one entry of spec.secrets.scopes: which secrets of the
// store StoreName the app may read through the secrets API.
type SecretScope struct {
	StoreName string
	// DefaultAccess is "allow" or "deny" (lower-cased); empty means allow.
	DefaultAccess  string
	AllowedSecrets []string
	DeniedSecrets  []string
}

// LoadConfiguration reads the Configuration resource in file. The file may
// hold other documents (they are skipped), but must hold exactly one
// Configuration; any problem is an *Error naming the file and line.
func LoadConfiguration(file string) (Configuration, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return Configuration{}, &Error{File: file, Err: fmt.Errorf("cannot read the configuration: %w", err)}
	}
	return ParseConfiguration(file, data)
}

// ParseConfiguration is LoadConfiguration on a file's contents, named file
// in messages.
func ParseConfiguration(file string, data []byte) (Configuration, error) {
	var found []Configuration
	for _, c := range splitDocuments(data) {
		var root yaml.Node
		if err := yaml.Unmarshal(c.data, &root); err != nil {
			line, msg := syntaxErrorLine(c.data, err)
			return Configuration{}, &Error{File: file, Line: c.line + line - 1, Err: fmt.Errorf("invalid YAML: %s", msg)}
		}
		if root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
			continue
		}
		top := deref(root.Content[0])
		d := &doc{file: file, offset: c.line - 1, top: top, kind: kindConfiguration}
		if top.Kind != yaml.MappingNode || d.scalar(top, "kind") != kindConfiguration {
			continue
		}
		cfg, err := d.configuration()
		if err != nil {
			return Configuration{}, err
		}
		found = append(found, cfg)
	}
	switch len(found) {
	case 0:
		return Configuration{}, &Error{File: file, Err: fmt.Errorf("holds no Configuration resource")}
	case 1:
		return found[0], nil
	}
	return Configuration{}, &Error{File: file, Err: fmt.Errorf("holds %d Configuration resources; give one", len(found))}
}

func (d *doc) configuration() (Configuration, error) {
	cfg := Configuration{File: d.file}
	if api := d.scalar(d.top, "apiVersion"); api != apiV1Alpha1 {
		d.fail(d.top, "apiVersion", "is %q, want %q", api, apiV1Alpha1)
	}
	_, md := d.mapping(d.top, "metadata", "metadata")
	cfg.Name = d.str(md, "name", "metadata.name")
	d.name = cfg.Name
	_, spec := d.mapping(d.top, "spec", "spec")
	_, nr := d.mapping(spec, "nameResolution", "spec.nameResolution")
	if nr != nil {
		cfg.NameResolution.Component = d.str(nr, "component", "spec.nameResolution.component")
		cfg.NameResolution.Version = d.str(nr, "version", "spec.nameResolution.version")
		if _, conf := d.mapping(nr, "configuration", "spec.nameResolution.configuration"); conf != nil {
			timestampsAsText(conf, map[*yaml.Node]bool{})
			var v any
			err := conf.Decode(&v)
			if err == nil {
				v, err = jsonable(v)
			}
			if err != nil {
				d.fail(conf, "spec.nameResolution.configuration", "%v", err)
			} else {
				cfg.NameResolution.Configuration, _ = v.(map[string]any)
			}
		}
		if cfg.NameResolution.Version == "" {
			cfg.NameResolution.Version = "v1"
		}
	}
	cfg.SecretScopes = d.secretScopes(spec)
	cfg.Tracing = d.tracing(spec)
	_, logging := d.mapping(spec, "logging", "spec.logging")
	if _, al := d.mapping(logging, "apiLogging", "spec.logging.apiLogging"); al != nil {
		cfg.APILogging = APILogging{
			Enabled:          d.boolean(al, "enabled", "spec.logging.apiLogging.enabled"),
			ObfuscateURLs:    d.boolean(al, "obfuscateURLs", "spec.logging.apiLogging.obfuscateURLs"),
			OmitHealthChecks: d.boolean(al, "omitHealthChecks", "spec.logging.apiLogging.omitHealthChecks"),
		}
	}
	metric, unusedMetric := d.metric(spec)
	cfg.Metric = metric
	cfg.Unused = append(unusedSpec(spec), unusedMetric...)
	if len(d.errs) > 0 {
		errs := make([]error, len(d.errs))
		for i, e := range d.errs {
			errs[i] = e
		}
		return Configuration{}, errors.Join(errs...)
	}
	return cfg, nil
}

// secretScopes reads spec.secrets.scopes.
func (d *doc) secretScopes(spec *yaml.Node) []SecretScope {
	_, secrets := d.mapping(spec, "secrets", "spec.secrets")
	k, v := field(secrets, "scopes")
	if v == nil || isNull(v) {
		return nil
	}
	if v.Kind != yaml.SequenceNode {
		d.fail(k, "spec.secrets.scopes", "must be a list of {storeName, defaultAccess, allowedSecrets, deniedSecrets}, not %s", describe(v))
		return nil
	}
	var out []SecretScope
	seen := map[string]bool{}
	for i, item := range v.Content {
		item = deref(item)
		path := fmt.Sprintf("spec.secrets.scopes[%d]", i)
		if item.Kind != yaml.MappingNode {
			d.fail(item, path, "must be a mapping, not %s", describe(item))
			continue
		}
		sc := SecretScope{StoreName: strings.TrimSpace(d.required(item, "storeName", path+".storeName", item))}
		if seen[sc.StoreName] {
			d.fail(item, path+".storeName", "store %q is scoped twice", sc.StoreName)
		}
		seen[sc.StoreName] = true
		sc.DefaultAccess = strings.ToLower(strings.TrimSpace(d.str(item, "defaultAccess", path+".defaultAccess")))
		switch sc.DefaultAccess {
		case "", "allow", "deny":
		default:
			ak, _ := field(item, "defaultAccess")
			d.fail(ak, path+".defaultAccess", "must be allow or deny, not %q", sc.DefaultAccess)
		}
		sc.AllowedSecrets = d.stringList(item, "allowedSecrets", path+".allowedSecrets")
		sc.DeniedSecrets = d.stringList(item, "deniedSecrets", path+".deniedSecrets")
		out = append(out, sc)
	}
	return out
}

// honouredSpec are the parts of a Configuration's spec that wapr acts on.
var honouredSpec = []string{"nameResolution", "secrets", "logging", "tracing", "metric", "metrics"}

// unusedSpec lists the other parts of spec that are set, as "spec.<key>".
func unusedSpec(spec *yaml.Node) []string {
	if spec == nil || spec.Kind != yaml.MappingNode {
		return nil
	}
	var out []string
	for i := 0; i+1 < len(spec.Content); i += 2 {
		k := spec.Content[i].Value
		if isNull(deref(spec.Content[i+1])) || slices.ContainsFunc(honouredSpec, func(h string) bool { return strings.EqualFold(h, k) }) {
			continue
		}
		out = append(out, "spec."+k)
	}
	return out
}
