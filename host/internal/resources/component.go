package resources

import (
	"fmt"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// component reads a Component document. Scopes are read first: a component
// meant for another app is skipped before it is checked.
func (l *loader) component(d *doc) {
	d.name = d.metadataName()
	scopes, ok := d.scopes()
	if ok && !inScope(scopes, l.appID) {
		return
	}
	c := Component{
		File:        d.file,
		Scopes:      scopes,
		Version:     "v1",
		InitTimeout: DefaultInitTimeout,
	}
	mdKey, md := d.mapping(d.top, "metadata", "metadata")
	c.Name = d.required(md, "name", "metadata.name", mdKey)
	c.Namespace = d.str(md, "namespace", "metadata.namespace")
	c.Annotations = d.stringMap(md, "annotations", "metadata.annotations")

	specKey, spec := d.mapping(d.top, "spec", "spec")
	c.Type = d.required(spec, "type", "spec.type", specKey)
	if v := d.str(spec, "version", "spec.version"); v != "" {
		c.Version = v
	}
	if s := d.str(spec, "initTimeout", "spec.initTimeout"); s != "" {
		k, _ := field(spec, "initTimeout")
		switch t, err := time.ParseDuration(s); {
		case err != nil:
			d.fail(k, "spec.initTimeout", "must be a duration such as 5s or 1m30s, not %q", s)
		case t <= 0:
			d.fail(k, "spec.initTimeout", "must be positive, not %q", s)
		default:
			c.InitTimeout = t
		}
	}
	c.IgnoreErrors = d.boolean(spec, "ignoreErrors", "spec.ignoreErrors")
	c.Metadata, c.SecretRefs = d.componentMetadata(spec)
	_, auth := d.mapping(d.top, "auth", "auth")
	c.SecretStore = strings.TrimSpace(d.str(auth, "secretStore", "auth.secretStore"))
	if len(c.SecretRefs) > 0 && c.SecretStore == "" {
		k, _ := field(spec, "metadata")
		d.fail(k, "auth.secretStore", "names no secret store, but spec.metadata takes values from secretKeyRef; add auth: {secretStore: <name of a secretstores.* component>}")
	}

	if l.flush(d) {
		return
	}
	nameKey, _ := field(md, "name")
	l.addComponent(c, d.line(nameKey))
}

// componentMetadata reads spec.metadata, the list of {name, value | envRef |
// secretKeyRef} items, into a map of strings and the secret references the
// host resolves before Init.
func (d *doc) componentMetadata(spec *yaml.Node) (map[string]string, map[string]SecretRef) {
	out := map[string]string{}
	refs := map[string]SecretRef{}
	k, v := field(spec, "metadata")
	if v == nil {
		return out, refs
	}
	if v.Kind != yaml.SequenceNode {
		d.fail(k, "spec.metadata", "must be a list of {name, value} items, not %s", describe(v))
		return out, refs
	}
	for i, item := range v.Content {
		item = deref(item)
		path := fmt.Sprintf("spec.metadata[%d]", i)
		if item.Kind != yaml.MappingNode {
			d.fail(item, path, "must be a {name, value} item, not %s", describe(item))
			continue
		}
		name := d.required(item, "name", path+".name", item)
		if name == "" {
			continue
		}
		if sk, sv := field(item, "secretKeyRef"); sk != nil {
			if ref, ok := d.secretKeyRef(item, sk, sv, path, name); ok {
				refs[name] = ref
			}
			continue
		}
		vk, vv := field(item, "value")
		if ek, ev := field(item, "envRef"); ek != nil {
			if vk != nil && vv != nil {
				d.fail(ek, path+".envRef", "metadata item %q: set value or envRef, not both", name)
				continue
			}
			if ev == nil || ev.Kind != yaml.ScalarNode || strings.TrimSpace(ev.Value) == "" {
				d.fail(ek, path+".envRef", "metadata item %q: must name an environment variable", name)
				continue
			}
			// An unset variable is an error, not "": an empty value would
			// surface later as a confusing driver error far from the cause.
			val, ok := os.LookupEnv(ev.Value)
			if !ok {
				d.fail(ek, path+".envRef", "metadata item %q: environment variable %s is not set", name, ev.Value)
				continue
			}
			out[name] = val
			continue
		}
		switch {
		case vv == nil:
			out[name] = ""
		case vv.Kind == yaml.ScalarNode:
			// The text as written: "6379", "true", "0x1F" reach the component
			// unchanged, since components parse their own values.
			out[name] = vv.Value
		default:
			s, err := jsonValue(vv)
			if err != nil {
				d.fail(vk, path+".value", "metadata item %q: %v", name, err)
				continue
			}
			out[name] = s
		}
	}
	return out, refs
}

// secretKeyRef reads an item's secretKeyRef: {name, key}. An empty key means
// the secret's name, as in Dapr (name/value stores key a secret by its name).
func (d *doc) secretKeyRef(item, k, v *yaml.Node, path, name string) (SecretRef, bool) {
	path += ".secretKeyRef"
	if vk, vv := field(item, "value"); vk != nil && !isNull(vv) {
		d.fail(k, path, "metadata item %q: set value or secretKeyRef, not both", name)
		return SecretRef{}, false
	}
	if ek, _ := field(item, "envRef"); ek != nil {
		d.fail(k, path, "metadata item %q: set envRef or secretKeyRef, not both", name)
		return SecretRef{}, false
	}
	if v == nil || v.Kind != yaml.MappingNode {
		d.fail(k, path, "metadata item %q: must be a mapping {name, key}, not %s", name, describe(v))
		return SecretRef{}, false
	}
	n := len(d.errs)
	ref := SecretRef{
		Name: strings.TrimSpace(d.required(v, "name", path+".name", k)),
		Key:  strings.TrimSpace(d.str(v, "key", path+".key")),
	}
	if ref.Key == "" {
		ref.Key = ref.Name
	}
	return ref, len(d.errs) == n
}
