package s3

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/wapr-dev/wapr/host/component"
)

func md(props map[string]string) component.Metadata {
	return component.Metadata{Name: "mys3", Type: "bindings.aws.s3", Version: "v1", Properties: props}
}

func TestParseConfigValues(t *testing.T) {
	tests := []struct {
		name  string
		props map[string]string
		want  func(c config) bool
	}{
		{
			name:  "defaults",
			props: map[string]string{"bucket": "b"},
			want: func(c config) bool {
				return c.bucket == "b" && !c.forcePathStyle && !c.decodeBase64 && !c.encodeBase64 &&
					c.aws.Region == "" && c.aws.Endpoint == "" && c.aws.AccessKey == "" && !c.aws.InsecureSkipVerify &&
					c.storageClass == ""
			},
		},
		{
			name: "everything set, names matched case-insensitively",
			props: map[string]string{
				"Bucket": "b", "REGION": "eu-west-1", "endpoint": "http://127.0.0.1:9000/", "forcePathStyle": "true",
				"accessKey": "AK", "secretKey": "SK", "sessionToken": "ST", "decodeBase64": "true",
				"encodeBase64": "1", "insecureSSL": "true", "storageClass": "STANDARD_IA",
			},
			want: func(c config) bool {
				return c.bucket == "b" && c.aws.Region == "eu-west-1" && c.aws.Endpoint == "http://127.0.0.1:9000" &&
					c.forcePathStyle && c.aws.AccessKey == "AK" && c.aws.SecretKey == "SK" && c.aws.SessionToken == "ST" &&
					c.decodeBase64 && c.encodeBase64 && c.aws.InsecureSkipVerify && c.storageClass == types.StorageClassStandardIa
			},
		},
		{
			name:  "awsRegion alias",
			props: map[string]string{"bucket": "b", "awsRegion": "ap-south-1"},
			want:  func(c config) bool { return c.aws.Region == "ap-south-1" },
		},
		{
			name:  "region wins over awsRegion",
			props: map[string]string{"bucket": "b", "awsRegion": "ap-south-1", "region": "us-west-2"},
			want:  func(c config) bool { return c.aws.Region == "us-west-2" },
		},
		{
			name:  "endpoint without scheme gets https",
			props: map[string]string{"bucket": "b", "endpoint": "minio:9000"},
			want:  func(c config) bool { return c.aws.Endpoint == "https://minio:9000" },
		},
		{
			name:  "disableSSL makes a scheme-less endpoint http",
			props: map[string]string{"bucket": "b", "endpoint": "minio:9000", "disableSSL": "true"},
			want:  func(c config) bool { return c.aws.Endpoint == "http://minio:9000" },
		},
		{
			name:  "an explicit scheme wins over disableSSL",
			props: map[string]string{"bucket": "b", "endpoint": "https://minio:9000", "disableSSL": "true"},
			want:  func(c config) bool { return c.aws.Endpoint == "https://minio:9000" },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(md(tt.props))
			if err != nil {
				t.Fatalf("parseConfig: %v", err)
			}
			if !tt.want(c) {
				t.Errorf("unexpected config %+v", c)
			}
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name   string
		props  map[string]string
		fields []string // every field that must be reported, in order
	}{
		{name: "no bucket", props: map[string]string{}, fields: []string{"bucket"}},
		{name: "blank bucket", props: map[string]string{"bucket": "  "}, fields: []string{"bucket"}},
		{
			name:   "booleans are strict",
			props:  map[string]string{"bucket": "b", "forcePathStyle": "yes", "decodeBase64": "on", "encodeBase64": "y", "disableSSL": "no", "insecureSSL": "maybe"},
			fields: []string{"forcePathStyle", "decodeBase64", "encodeBase64", "disableSSL", "insecureSSL"},
		},
		{name: "secretKey missing", props: map[string]string{"bucket": "b", "accessKey": "AK"}, fields: []string{"secretKey"}},
		{name: "accessKey missing", props: map[string]string{"bucket": "b", "secretKey": "SK"}, fields: []string{"accessKey"}},
		{name: "sessionToken alone", props: map[string]string{"bucket": "b", "sessionToken": "ST"}, fields: []string{"sessionToken"}},
		{name: "bad endpoint scheme", props: map[string]string{"bucket": "b", "endpoint": "ftp://x"}, fields: []string{"endpoint"}},
		{name: "endpoint with a query", props: map[string]string{"bucket": "b", "endpoint": "http://x/?a=b"}, fields: []string{"endpoint"}},
		{name: "unknown storage class", props: map[string]string{"bucket": "b", "storageClass": "standard"}, fields: []string{"storageClass"}},
		{
			name: "all problems at once",
			props: map[string]string{
				"forcePathStyle": "yes", "accessKey": "AK", "endpoint": "ftp://x", "storageClass": "COLD",
			},
			fields: []string{"bucket", "forcePathStyle", "endpoint", "secretKey", "storageClass"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig(md(tt.props))
			var ce *component.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *component.ConfigError", err)
			}
			if !errors.Is(err, component.ErrInvalidArgument) {
				t.Errorf("err does not wrap ErrInvalidArgument")
			}
			var got []string
			for _, p := range ce.Problems {
				got = append(got, p.Field)
			}
			if !slices.Equal(got, tt.fields) {
				t.Errorf("fields = %v, want %v (%v)", got, tt.fields, err)
			}
		})
	}
}

func TestParseConfigNeverEchoesSecrets(t *testing.T) {
	_, err := parseConfig(md(map[string]string{"secretKey": "s3cr3t-value", "sessionToken": "t0k3n-value"}))
	if err == nil {
		t.Fatal("want an error")
	}
	if msg := err.Error(); strings.Contains(msg, "s3cr3t-value") || strings.Contains(msg, "t0k3n-value") {
		t.Errorf("error echoes a secret: %s", msg)
	}
}
