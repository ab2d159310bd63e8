// Package awsconfig holds what the native AWS drivers (bindings.aws.s3,
// state.aws.dynamodb) share: reading Dapr's AWS metadata keys (region,
// endpoint, static credentials), turning them into an aws.Config with an
// HTTP client the driver owns, routing the SDK's log lines to slog, telling
// an unreachable endpoint from an answer of the service, and tracking calls
// in flight so Close can wait for them (Calls).
//
// It is internal to builtin: the drivers' public surface is the component
// contract, and the AWS SDK types stay inside the driver packages.
package awsconfig

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go/logging"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/wapr-dev/wapr/host/component"
)

// Metadata keys shared by the AWS components, as Dapr spells them.
// component.ConfigReader matches them case-insensitively.
const (
	KeyRegion       = "region"
	KeyRegionAlias  = "awsRegion" // Dapr's older name for region
	KeyEndpoint     = "endpoint"
	KeyAccessKey    = "accessKey"
	KeySecretKey    = "secretKey"
	KeySessionToken = "sessionToken"
)

// DefaultEndpointRegion is the region used with a custom endpoint when
// neither the metadata nor the environment names one: emulators and most
// S3-compatible stores accept any region, but SigV4 needs one to sign.
const DefaultEndpointRegion = "us-east-1"

// Settings are the AWS connection settings of one component, as read from
// its metadata. The zero value means: AWS's own endpoint, the region and
// credentials of the SDK's default chain (environment, shared files, IMDS…).
type Settings struct {
	// Region from the metadata; "" defers to the environment (see Load).
	Region string
	// Endpoint is an absolute http(s) URL, or "" for AWS's own endpoint.
	Endpoint string
	// Static credentials, used when AccessKey is set (SecretKey then is
	// too); otherwise the SDK's default credential chain applies.
	AccessKey    string
	SecretKey    string
	SessionToken string
	// InsecureSkipVerify turns off TLS certificate checks (for self-signed
	// test endpoints only).
	InsecureSkipVerify bool
}

// Read reads region (or its alias awsRegion), endpoint and the static
// credentials from r, recording every problem on r. defaultScheme ("https"
// or "http") is put in front of an endpoint written without one, such as
// "minio:9000".
func Read(r *component.ConfigReader, defaultScheme string) Settings {
	s := Settings{
		Region:       r.String(KeyRegion, r.String(KeyRegionAlias, "")),
		AccessKey:    r.String(KeyAccessKey, ""),
		SecretKey:    r.String(KeySecretKey, ""),
		SessionToken: r.String(KeySessionToken, ""),
	}
	if raw := r.String(KeyEndpoint, ""); raw != "" {
		ep, problem := normalizeEndpoint(raw, defaultScheme)
		if problem != "" {
			r.Fail(KeyEndpoint, problem)
		}
		s.Endpoint = ep
	}
	switch {
	case s.AccessKey != "" && s.SecretKey == "":
		r.Fail(KeySecretKey, "is required when accessKey is set")
	case s.AccessKey == "" && s.SecretKey != "":
		r.Fail(KeyAccessKey, "is required when secretKey is set")
	case s.AccessKey == "" && s.SessionToken != "":
		r.Fail(KeySessionToken, "needs accessKey and secretKey")
	}
	return s
}

// normalizeEndpoint returns raw as an absolute http(s) URL without a
// trailing slash, or a problem description (which never quotes raw
// verbatim beyond its scheme, so a URL with a password in it stays out of
// logs).
func normalizeEndpoint(raw, defaultScheme string) (string, string) {
	if !strings.Contains(raw, "://") {
		raw = defaultScheme + "://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", "must be an absolute http or https URL such as http://127.0.0.1:8000: " + err.Error()
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", "must be an http or https URL, got scheme " + strconv.Quote(u.Scheme)
	}
	if u.Host == "" {
		return "", "must be an absolute http or https URL such as http://127.0.0.1:8000: the host is missing"
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", "must not carry a query or fragment"
	}
	return strings.TrimRight(raw, "/"), ""
}

// Where describes the endpoint a client with these settings talks to, for
// error messages: the custom endpoint, or AWS in region.
func (s Settings) Where(region string) string {
	if s.Endpoint != "" {
		return "endpoint " + redact(s.Endpoint)
	}
	return "AWS region " + region
}

func redact(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return endpoint
	}
	return u.Redacted()
}

// Conn is what Load builds: the SDK configuration and the HTTP transport
// behind it, which the driver owns and closes.
type Conn struct {
	Config aws.Config
	// Transport carries every request of clients built from Config.
	// CloseIdleConnections on it releases pooled connections at Close.
	Transport *http.Transport
}

// Load builds the SDK configuration for s. It makes no network call:
// credentials from the default chain are resolved on the first request.
//
// The region is, in order: s.Region; the environment's (AWS_REGION or the
// shared config profile); DefaultEndpointRegion when s.Endpoint is set.
// With none of them it returns a *component.ConfigError about region.
//
// The SDK's log lines go to slog.Default(), tagged with md's name and type.
func (s Settings) Load(ctx context.Context, md component.Metadata) (Conn, error) {
	opts := []func(*config.LoadOptions) error{config.WithLogger(slogLogger(md))}
	if s.Region != "" {
		opts = append(opts, config.WithRegion(s.Region))
	}
	if s.Endpoint != "" {
		opts = append(opts, config.WithBaseEndpoint(s.Endpoint))
	}
	if s.AccessKey != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, s.SessionToken)))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return Conn{}, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		if s.Endpoint == "" {
			e := &component.ConfigError{}
			e.Add(KeyRegion, "is required (or set AWS_REGION in the environment)")
			return Conn{}, e
		}
		cfg.Region = DefaultEndpointRegion
	}

	// Replace the SDK's client with one whose transport the driver holds,
	// so Close can release pooled connections. The SDK's client carries
	// the environment's settings (such as AWS_CA_BUNDLE); its transport is
	// the starting point.
	var tr *http.Transport
	if bc, ok := cfg.HTTPClient.(*awshttp.BuildableClient); ok {
		tr = bc.GetTransport() // a copy
	} else {
		tr = awshttp.NewBuildableClient().GetTransport()
	}
	if s.InsecureSkipVerify {
		if tr.TLSClientConfig == nil {
			tr.TLSClientConfig = &tls.Config{}
		}
		tr.TLSClientConfig.InsecureSkipVerify = true //nolint:gosec // asked for by insecureSSL
	}
	cfg.HTTPClient = &http.Client{
		Transport: tr,
		// AWS APIs answer redirects as errors to report, not to follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return Conn{Config: cfg, Transport: tr}, nil
}

// slogLogger forwards the SDK's log lines (warnings such as skipped
// checksum validation; debug lines only when a client log mode asks for
// them) to slog.Default() at the matching level.
func slogLogger(md component.Metadata) logging.Logger {
	return logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
		level := slog.LevelInfo
		switch c {
		case logging.Warn:
			level = slog.LevelWarn
		case logging.Debug:
			level = slog.LevelDebug
		}
		slog.Default().Log(context.Background(), level, "aws sdk: "+fmt.Sprintf(format, v...),
			"component", md.Name, "type", md.Type)
	})
}

// Unreachable reports whether err means the request never got an answer
// from the service: connection refused, DNS failure, TLS failure, a
// connection reset or a transport timeout (after the SDK's own retries).
// An error response from the service, or a cancelled context, is not.
func Unreachable(err error) bool {
	var se *smithyhttp.RequestSendError
	return errors.As(err, &se)
}

// HTTPStatus returns the HTTP status code of an error response from the
// service, or 0 when err carries none.
func HTTPStatus(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}
