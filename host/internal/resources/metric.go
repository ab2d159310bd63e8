package resources

import (
	"fmt"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// Metric is the part of spec.metric (daprd also reads spec.metrics) that
// wapr honours.
type Metric struct {
	// Disabled is enabled: false: the sidecar records no dapr_ metric (its
	// metrics port still serves the Go runtime's and the process').
	Disabled bool
	// LatencyBuckets is latencyDistributionBuckets (milliseconds, rising);
	// nil keeps daprd's default buckets.
	LatencyBuckets []float64
	// NoPathLabels is http.increasedCardinality: false: HTTP series carry
	// path="" rather than their path.
	NoPathLabels bool
	// ExcludeVerbs is http.excludeVerbs: HTTP series carry method="".
	ExcludeVerbs bool
}

// metric reads spec.metric, then spec.metrics, whose enabled wins, as in
// daprd. The parts wapr does not act on (rules, recordErrorCodes,
// http.pathMatching) are returned as "spec.metric.<key>".
func (d *doc) metric(spec *yaml.Node) (Metric, []string) {
	var out Metric
	var unused []string
	for _, key := range []string{"metric", "metrics"} {
		_, m := d.mapping(spec, key, "spec."+key)
		if m == nil {
			continue
		}
		path := "spec." + key
		if _, v := field(m, "enabled"); v != nil {
			out.Disabled = !d.boolean(m, "enabled", path+".enabled")
		}
		if k, v := field(m, "latencyDistributionBuckets"); v != nil {
			out.LatencyBuckets = d.buckets(k, v, path+".latencyDistributionBuckets")
		}
		_, h := d.mapping(m, "http", path+".http")
		if _, v := field(h, "increasedCardinality"); v != nil {
			out.NoPathLabels = !d.boolean(h, "increasedCardinality", path+".http.increasedCardinality")
		}
		out.ExcludeVerbs = out.ExcludeVerbs || d.boolean(h, "excludeVerbs", path+".http.excludeVerbs")
		if _, v := field(h, "pathMatching"); v != nil {
			unused = append(unused, path+".http.pathMatching")
		}
		for _, name := range []string{"rules", "recordErrorCodes"} {
			if _, v := field(m, name); v != nil {
				unused = append(unused, path+"."+name)
			}
		}
	}
	return out, unused
}

// buckets reads a list of rising positive whole numbers.
func (d *doc) buckets(k, v *yaml.Node, path string) []float64 {
	if v.Kind != yaml.SequenceNode {
		d.fail(k, path, "must be a list of whole numbers of milliseconds, not %s", describe(v))
		return nil
	}
	out := make([]float64, 0, len(v.Content))
	for i, item := range v.Content {
		item = deref(item)
		n, err := strconv.Atoi(item.Value)
		if item.Kind != yaml.ScalarNode || err != nil || n <= 0 {
			d.fail(item, fmt.Sprintf("%s[%d]", path, i), "must be a whole number of milliseconds above 0, not %s", describe(item))
			return nil
		}
		if len(out) > 0 && float64(n) <= out[len(out)-1] {
			d.fail(item, fmt.Sprintf("%s[%d]", path, i), "must be above the bucket before it (%v), not %d", out[len(out)-1], n)
			return nil
		}
		out = append(out, float64(n))
	}
	return out
}
