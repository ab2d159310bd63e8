package resources

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// subscription reads a Subscription document of apiVersion api. Scopes are
// read first: a subscription meant for another app is skipped before it is
// checked.
func (l *loader) subscription(d *doc, api string) {
	d.name = d.metadataName()
	scopes, ok := d.scopes()
	if ok && !inScope(scopes, l.appID) {
		return
	}
	s := Subscription{File: d.file, Scopes: scopes}
	_, md := d.mapping(d.top, "metadata", "metadata")
	s.Name = d.str(md, "name", "metadata.name")

	specKey, spec := d.mapping(d.top, "spec", "spec")
	s.PubsubName = d.required(spec, "pubsubname", "spec.pubsubname", specKey)
	s.Topic = d.required(spec, "topic", "spec.topic", specKey)
	if api == apiV1Alpha1 {
		d.routeV1(spec, specKey, &s)
	} else {
		d.routesV2(spec, specKey, &s)
	}
	s.DeadLetterTopic = d.str(spec, "deadLetterTopic", "spec.deadLetterTopic")
	s.Metadata = d.stringMap(spec, "metadata", "spec.metadata")
	if _, b := d.mapping(spec, "bulkSubscribe", "spec.bulkSubscribe"); b != nil {
		s.BulkSubscribe = BulkSubscribe{
			Enabled:            d.boolean(b, "enabled", "spec.bulkSubscribe.enabled"),
			MaxMessagesCount:   d.count(b, "maxMessagesCount", "spec.bulkSubscribe.maxMessagesCount"),
			MaxAwaitDurationMs: d.count(b, "maxAwaitDurationMs", "spec.bulkSubscribe.maxAwaitDurationMs"),
		}
	}

	if l.flush(d) {
		return
	}
	topicKey, _ := field(spec, "topic")
	l.addSubscription(s, d.line(topicKey))
}

// routeV1 reads v1alpha1's single spec.route.
func (d *doc) routeV1(spec, specKey *yaml.Node, s *Subscription) {
	if k, _ := field(spec, "route"); k == nil {
		if rk, _ := field(spec, "routes"); rk != nil {
			// Say why the routes written are not seen, rather than only
			// that a route is missing.
			d.fail(rk, "spec.route", "is required: spec.routes needs apiVersion %s", apiV2Alpha1)
			return
		}
	}
	s.DefaultPath = d.required(spec, "route", "spec.route", specKey)
}

// routesV2 reads v2alpha1's spec.routes: CEL rules in order, then a default.
func (d *doc) routesV2(spec, specKey *yaml.Node, s *Subscription) {
	routesKey, routes := d.mapping(spec, "routes", "spec.routes")
	if routesKey == nil {
		if rk, _ := field(spec, "route"); rk != nil {
			d.fail(rk, "spec.routes", "is required: spec.route is the %s form", apiV1Alpha1)
			return
		}
		d.fail(specKey, "spec.routes", "is required")
		return
	}
	if routes == nil {
		if _, v := field(spec, "routes"); v == nil {
			d.fail(routesKey, "spec.routes", "must give rules or a default")
		}
		return // not a mapping: reported by d.mapping
	}
	before := len(d.errs)
	rk, rules := field(routes, "rules")
	switch {
	case rules == nil:
	case rules.Kind != yaml.SequenceNode:
		d.fail(rk, "spec.routes.rules", "must be a list of {match, path} rules, not %s", describe(rules))
	default:
		for i, item := range rules.Content {
			item = deref(item)
			path := fmt.Sprintf("spec.routes.rules[%d]", i)
			if item.Kind != yaml.MappingNode {
				d.fail(item, path, "must be a {match, path} rule, not %s", describe(item))
				continue
			}
			s.Rules = append(s.Rules, Rule{
				Match: d.str(item, "match", path+".match"),
				Path:  d.required(item, "path", path+".path", item),
			})
		}
	}
	s.DefaultPath = d.str(routes, "default", "spec.routes.default")
	if len(d.errs) == before && len(s.Rules) == 0 && s.DefaultPath == "" {
		d.fail(routesKey, "spec.routes", "must give rules or a default")
	}
}
