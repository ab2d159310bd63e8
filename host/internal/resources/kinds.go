package resources

import (
	"go.yaml.in/yaml/v3"
)

const kindResiliency = "Resiliency"

// Resiliency is one Dapr Resiliency resource (apiVersion dapr.io/v1alpha1)
// found in a resources folder that applies to the app. Its spec is kept as
// data here; package host/internal/resiliency checks and applies it.
type Resiliency struct {
	// Name is metadata.name.
	Name string
	// Scopes lists the app IDs the policies apply to; empty means all.
	Scopes []string
	// Spec is spec decoded from YAML into JSON's shapes (map[string]any,
	// []any, string, float64 or int, bool, nil), timestamps kept as written;
	// nil when the document has no spec. It belongs to the Set.
	Spec map[string]any
	// File and Line locate the document, for messages.
	File string
	Line int
}

// Unacted is a document in a resources folder that wapr reads but does not
// act on: a kind it does not serve (HTTPEndpoint, …) or a Component or
// Subscription of an apiVersion it does not know. The host logs each one,
// so nothing in a folder is skipped silently.
type Unacted struct {
	// Kind and APIVersion are the document's kind and apiVersion as written
	// (empty when missing).
	Kind       string
	APIVersion string
	// Name is metadata.name, when the document has one.
	Name string
	// File and Line locate the document.
	File string
	Line int
}

// resiliency reads a Resiliency document. A resiliency meant for another app
// is skipped before it is checked, as a component is.
func (l *loader) resiliency(d *doc) {
	d.name = d.metadataName()
	scopes, ok := d.scopes()
	if ok && !inScope(scopes, l.appID) {
		return
	}
	r := Resiliency{File: d.file, Line: d.line(d.top), Scopes: scopes}
	mdKey, md := d.mapping(d.top, "metadata", "metadata")
	r.Name = d.required(md, "name", "metadata.name", mdKey)
	if _, spec := d.mapping(d.top, "spec", "spec"); spec != nil {
		r.Spec = d.data(spec, "spec")
	}
	if l.flush(d) {
		return
	}
	l.set.Resiliencies = append(l.set.Resiliencies, r)
}

// configurationDocument reads a Configuration document found in a resources
// folder. daprd takes its Configuration from --config only; wapr reads one
// found in a folder so that the host can say it does not apply it.
func (l *loader) configurationDocument(d *doc) {
	d.name = d.metadataName()
	cfg, err := d.configuration()
	if err != nil {
		l.flush(d)
		return
	}
	l.set.Configurations = append(l.set.Configurations, cfg)
}

// unacted records a document wapr does not act on.
func (l *loader) unacted(d *doc, kind, api string) {
	l.set.Unacted = append(l.set.Unacted, Unacted{
		Kind: kind, APIVersion: api, Name: d.metadataName(), File: d.file, Line: d.line(d.top),
	})
}

// data decodes n into JSON's shapes; a problem is reported at path.
func (d *doc) data(n *yaml.Node, path string) map[string]any {
	timestampsAsText(n, map[*yaml.Node]bool{})
	var v any
	err := n.Decode(&v)
	if err == nil {
		v, err = jsonable(v)
	}
	if err != nil {
		d.fail(n, path, "%v", err)
		return nil
	}
	m, _ := v.(map[string]any)
	return m
}
