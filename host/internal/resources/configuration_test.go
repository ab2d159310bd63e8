package resources

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseConfiguration(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		want    Configuration
		wantErr string
	}{
		{
			name: "name resolution and secret scopes",
			yaml: `apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: appconfig
spec:
  nameResolution:
    component: static
    configuration:
      apps: {b: ["127.0.0.1:1"]}
  secrets:
    scopes:
    - storeName: vault
      defaultAccess: Deny
      allowedSecrets: ["db-password", "api-key"]
    - storeName: local
      deniedSecrets: [root]
`,
			want: Configuration{
				Name: "appconfig",
				NameResolution: NameResolution{Component: "static", Version: "v1",
					Configuration: map[string]any{"apps": map[string]any{"b": []any{"127.0.0.1:1"}}}},
				SecretScopes: []SecretScope{
					{StoreName: "vault", DefaultAccess: "deny", AllowedSecrets: []string{"db-password", "api-key"}},
					{StoreName: "local", DeniedSecrets: []string{"root"}},
				},
				File: "c.yaml",
			},
		},
		{
			name: "other documents are skipped",
			yaml: `apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: x}
---
apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata: {name: only}
`,
			want: Configuration{Name: "only", File: "c.yaml"},
		},
		{
			name: "secret scope problems, all at once",
			yaml: `apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: appconfig
spec:
  secrets:
    scopes:
    - defaultAccess: maybe
      allowedSecrets: a
    - storeName: s
      deniedSecrets: [{x: 1}]
    - storeName: s
`,
			wantErr: `c.yaml:8: configuration "appconfig": spec.secrets.scopes[0].storeName: is required
c.yaml:8: configuration "appconfig": spec.secrets.scopes[0].defaultAccess: must be allow or deny, not "maybe"
c.yaml:9: configuration "appconfig": spec.secrets.scopes[0].allowedSecrets: must be a list of strings, not "a"
c.yaml:11: configuration "appconfig": spec.secrets.scopes[1].deniedSecrets[0]: must be a string, not a mapping
c.yaml:12: configuration "appconfig": spec.secrets.scopes[2].storeName: store "s" is scoped twice`,
		},
		{
			// What `dapr init` writes to ~/.dapr/config.yaml (dapr/cli,
			// createDefaultConfiguration), with mTLS settings as a
			// Configuration for daprd may carry them.
			name: "daprd settings wapr does not act on are accepted and listed",
			yaml: `apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: daprConfig
spec:
  tracing:
    samplingRate: "1"
    zipkin:
      endpointAddress: http://localhost:9411/api/v2/spans
  mtls:
    enabled: true
    workloadCertTTL: 24h
    allowedClockSkew: 15m
  features:
  - name: HotReload
    enabled: true
  nameResolution:
    component: mdns
  metric:
    enabled: true
  httpPipeline: ~
`,
			want: Configuration{
				Name:           "daprConfig",
				NameResolution: NameResolution{Component: "mdns", Version: "v1"},
				Tracing:        Tracing{Enabled: true, SamplingRate: 1, ZipkinEndpoint: "http://localhost:9411/api/v2/spans"},
				Unused:         []string{"spec.mtls", "spec.features"},
				File:           "c.yaml",
			},
		},
		{
			name: "tracing to an OpenTelemetry collector over OTLP/HTTP, to stdout",
			yaml: `apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata: {name: tracing}
spec:
  tracing:
    samplingRate: 0.25
    stdout: true
    otel:
      endpointAddress: localhost:4318
      isSecure: false
      protocol: HTTP
`,
			want: Configuration{Name: "tracing", File: "c.yaml", Tracing: Tracing{
				Enabled: true, SamplingRate: 0.25, Stdout: true,
				OTel: OTelExporter{EndpointAddress: "localhost:4318", Protocol: "http"},
			}},
		},
		{
			name: "tracing without a sampling rate samples at daprd's default; otel is secure by default",
			yaml: `apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata: {name: tracing}
spec:
  tracing:
    otel: {endpointAddress: "collector:4317", protocol: grpc}
`,
			want: Configuration{Name: "tracing", File: "c.yaml", Tracing: Tracing{
				Enabled: true, SamplingRate: DefaultSamplingRate,
				OTel: OTelExporter{EndpointAddress: "collector:4317", IsSecure: true, Protocol: "grpc"},
			}},
		},
		{
			name: "sampling rate 0 turns tracing off",
			yaml: `apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata: {name: tracing}
spec:
  tracing: {samplingRate: "0"}
`,
			want: Configuration{Name: "tracing", File: "c.yaml", Tracing: Tracing{Enabled: true}},
		},
		{
			name: "tracing problems, all at once",
			yaml: `apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata: {name: tracing}
spec:
  tracing:
    samplingRate: "often"
    stdout: sometimes
    otel:
      endpointAddress: localhost:4317
      protocol: udp
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: x}
`,
			wantErr: `c.yaml:6: configuration "tracing": spec.tracing.samplingRate: must be a number from 0 to 1 ("1" records every trace, "0" none), not "often"
c.yaml:7: configuration "tracing": spec.tracing.stdout: must be true or false, not "sometimes"
c.yaml:10: configuration "tracing": spec.tracing.otel.protocol: must be grpc or http, not "udp"`,
		},
		{
			name: "a sampling rate above 1 and an otel endpoint without a protocol are refused",
			yaml: `apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata: {name: tracing}
spec:
  tracing:
    samplingRate: "1.5"
    otel:
      endpointAddress: localhost:4317
`,
			wantErr: `c.yaml:6: configuration "tracing": spec.tracing.samplingRate: must be a number from 0 to 1 ("1" records every trace, "0" none), not "1.5"
c.yaml:8: configuration "tracing": spec.tracing.otel.protocol: is required with an endpointAddress: grpc or http`,
		},
		{
			name:    "no Configuration",
			yaml:    "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: x}\n",
			wantErr: "c.yaml: holds no Configuration resource",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConfiguration("c.yaml", []byte(tt.yaml))
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("no error; want:\n%s", tt.wantErr)
				}
				if g := strings.TrimSpace(err.Error()); g != tt.wantErr {
					t.Fatalf("error:\n%s\nwant:\n%s", g, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
