package awsconfig

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"testing"

	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/wapr-dev/wapr/host/component"
)

func md(props map[string]string) component.Metadata {
	return component.Metadata{Name: "c", Type: "test.aws", Properties: props}
}

func TestRead(t *testing.T) {
	tests := []struct {
		name     string
		props    map[string]string
		scheme   string
		want     Settings
		problems []string
	}{
		{name: "nothing", props: map[string]string{}, want: Settings{}},
		{
			name:  "everything",
			props: map[string]string{"region": "eu-west-1", "endpoint": "http://h:1/", "accessKey": "a", "secretKey": "s", "sessionToken": "t"},
			want:  Settings{Region: "eu-west-1", Endpoint: "http://h:1", AccessKey: "a", SecretKey: "s", SessionToken: "t"},
		},
		{name: "awsRegion alias", props: map[string]string{"AWSREGION": "ap-south-1"}, want: Settings{Region: "ap-south-1"}},
		{name: "scheme added", props: map[string]string{"endpoint": "h:9000"}, scheme: "http", want: Settings{Endpoint: "http://h:9000"}},
		{name: "endpoint path kept", props: map[string]string{"endpoint": "https://h/s3/"}, want: Settings{Endpoint: "https://h/s3"}},
		{name: "bad scheme", props: map[string]string{"endpoint": "ftp://h"}, problems: []string{"endpoint"}},
		{name: "no host", props: map[string]string{"endpoint": "http://"}, problems: []string{"endpoint"}},
		{name: "half credentials", props: map[string]string{"accessKey": "a"}, problems: []string{"secretKey"}},
		{name: "token alone", props: map[string]string{"sessionToken": "t"}, problems: []string{"sessionToken"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := component.NewConfigReader(md(tt.props))
			scheme := tt.scheme
			if scheme == "" {
				scheme = "https"
			}
			got := Read(r, scheme)
			var fields []string
			var ce *component.ConfigError
			if errors.As(r.Err(), &ce) {
				for _, p := range ce.Problems {
					fields = append(fields, p.Field)
				}
			}
			if !slices.Equal(fields, tt.problems) {
				t.Fatalf("problems %v, want %v (%v)", fields, tt.problems, r.Err())
			}
			if tt.problems == nil && got != tt.want {
				t.Errorf("Read = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	// Keep the developer's own AWS files and profile out of the test.
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_PROFILE", "")
	ctx := context.Background()

	tests := []struct {
		name     string
		env      string // AWS_REGION
		s        Settings
		region   string // "" = want a config error about region
		insecure bool
	}{
		{name: "metadata region wins", env: "eu-west-1", s: Settings{Region: "us-west-2"}, region: "us-west-2"},
		{name: "environment region", env: "eu-west-1", s: Settings{}, region: "eu-west-1"},
		{name: "endpoint without region", s: Settings{Endpoint: "http://127.0.0.1:1"}, region: DefaultEndpointRegion},
		{name: "no region at all", s: Settings{}},
		{name: "insecure TLS", s: Settings{Region: "us-east-1", InsecureSkipVerify: true}, region: "us-east-1", insecure: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("AWS_REGION", tt.env)
			conn, err := tt.s.Load(ctx, md(nil))
			if tt.region == "" {
				var ce *component.ConfigError
				if !errors.As(err, &ce) || ce.Problems[0].Field != "region" {
					t.Fatalf("Load: err = %v, want a config error about region", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if conn.Config.Region != tt.region {
				t.Errorf("region = %q, want %q", conn.Config.Region, tt.region)
			}
			hc, ok := conn.Config.HTTPClient.(*http.Client)
			if !ok || hc.Transport != conn.Transport {
				t.Fatalf("HTTPClient %T does not use Conn.Transport", conn.Config.HTTPClient)
			}
			if got := conn.Transport.TLSClientConfig != nil && conn.Transport.TLSClientConfig.InsecureSkipVerify; got != tt.insecure {
				t.Errorf("InsecureSkipVerify = %v, want %v", got, tt.insecure)
			}
		})
	}

	t.Run("static credentials", func(t *testing.T) {
		conn, err := Settings{Region: "us-east-1", AccessKey: "AK", SecretKey: "SK", SessionToken: "ST"}.Load(ctx, md(nil))
		if err != nil {
			t.Fatal(err)
		}
		creds, err := conn.Config.Credentials.Retrieve(ctx)
		if err != nil || creds.AccessKeyID != "AK" || creds.SecretAccessKey != "SK" || creds.SessionToken != "ST" {
			t.Errorf("credentials = %+v, %v", creds, err)
		}
	})
}

func TestUnreachable(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"send error", fmt.Errorf("op: %w", &smithyhttp.RequestSendError{Err: refused}), true},
		{"service answer", &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 500}}, Err: errors.New("boom")}, false},
		{"cancelled", context.Canceled, false},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Unreachable(tt.err); got != tt.want {
				t.Errorf("Unreachable = %v, want %v", got, tt.want)
			}
		})
	}
	status := &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 403}}, Err: errors.New("denied")}
	if got := HTTPStatus(fmt.Errorf("wrapped: %w", status)); got != 403 {
		t.Errorf("HTTPStatus = %d, want 403", got)
	}
	if got := HTTPStatus(errors.New("plain")); got != 0 {
		t.Errorf("HTTPStatus = %d, want 0", got)
	}
}
