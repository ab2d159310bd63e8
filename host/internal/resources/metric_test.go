package resources

import (
	"slices"
	"strings"
	"testing"
)

func TestConfigurationMetric(t *testing.T) {
	head := "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: c\nspec:\n"
	for _, tc := range []struct {
		name, spec string
		want       Metric
		unused     []string
		wantErr    string
	}{
		{name: "none"},
		{name: "enabled", spec: "  metric:\n    enabled: true\n"},
		{name: "disabled", spec: "  metric:\n    enabled: false\n", want: Metric{Disabled: true}},
		{name: "metrics wins, as daprd", spec: "  metric:\n    enabled: true\n  metrics:\n    enabled: false\n", want: Metric{Disabled: true}},
		{
			name: "buckets and http",
			spec: "  metric:\n    latencyDistributionBuckets: [1, 5, 50]\n    http:\n      increasedCardinality: false\n      excludeVerbs: true\n",
			want: Metric{LatencyBuckets: []float64{1, 5, 50}, NoPathLabels: true, ExcludeVerbs: true},
		},
		{
			name:   "not acted on, named",
			spec:   "  metric:\n    recordErrorCodes: true\n    rules:\n    - name: dapr_runtime_service_invocation_req_sent_total\n    http:\n      pathMatching: [/orders]\n",
			unused: []string{"spec.metric.http.pathMatching", "spec.metric.rules", "spec.metric.recordErrorCodes"},
		},
		{name: "buckets must rise", spec: "  metric:\n    latencyDistributionBuckets: [5, 5]\n", wantErr: "spec.metric.latencyDistributionBuckets[1]"},
		{name: "buckets are numbers", spec: "  metric:\n    latencyDistributionBuckets: [fast]\n", wantErr: "spec.metric.latencyDistributionBuckets[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseConfiguration("c.yaml", []byte(head+tc.spec))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one about %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			m := cfg.Metric
			if m.Disabled != tc.want.Disabled || m.NoPathLabels != tc.want.NoPathLabels || m.ExcludeVerbs != tc.want.ExcludeVerbs || !slices.Equal(m.LatencyBuckets, tc.want.LatencyBuckets) {
				t.Errorf("metric %+v, want %+v", m, tc.want)
			}
			if !slices.Equal(cfg.Unused, tc.unused) {
				t.Errorf("unused %q, want %q", cfg.Unused, tc.unused)
			}
		})
	}
}
