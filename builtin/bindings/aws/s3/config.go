package s3

import (
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/wapr-dev/wapr/builtin/internal/awsconfig"
	"github.com/wapr-dev/wapr/host/component"
)

// Component metadata keys besides the shared AWS ones (region, awsRegion,
// endpoint, accessKey, secretKey, sessionToken), as Dapr spells them.
const (
	keyBucket         = "bucket"
	keyForcePathStyle = "forcePathStyle"
	keyDecodeBase64   = "decodeBase64"
	keyEncodeBase64   = "encodeBase64"
	keyDisableSSL     = "disableSSL"
	keyInsecureSSL    = "insecureSSL"
	keyStorageClass   = "storageClass"
)

// config is the parsed component metadata. It is immutable after
// parseConfig.
type config struct {
	bucket         string
	aws            awsconfig.Settings
	forcePathStyle bool
	decodeBase64   bool // default for create's decodeBase64
	encodeBase64   bool // default for get's encodeBase64
	storageClass   types.StorageClass
}

// parseConfig reads every metadata key, applies the defaults and reports
// every problem at once as a *component.ConfigError.
//
// The region is not checked here: with neither a region nor an endpoint in
// the metadata, Init takes it from the environment (AWS_REGION or the
// shared config profile) and fails when there is none.
func parseConfig(md component.Metadata) (config, error) {
	r := component.NewConfigReader(md)
	var c config
	c.bucket = r.Required(keyBucket)
	c.forcePathStyle = r.Bool(keyForcePathStyle, false)
	c.decodeBase64 = r.Bool(keyDecodeBase64, false)
	c.encodeBase64 = r.Bool(keyEncodeBase64, false)
	disableSSL := r.Bool(keyDisableSSL, false)
	scheme := "https"
	if disableSSL {
		scheme = "http" // only for an endpoint written without a scheme, as in Dapr
	}
	c.aws = awsconfig.Read(r, scheme)
	c.aws.InsecureSkipVerify = r.Bool(keyInsecureSSL, false)
	if v := r.String(keyStorageClass, ""); v != "" {
		sc, problem := parseStorageClass(v)
		if problem != "" {
			r.Fail(keyStorageClass, problem)
		}
		c.storageClass = sc
	}
	if err := r.Err(); err != nil {
		return config{}, err
	}
	return c, nil
}

// parseStorageClass checks v against the storage classes S3 knows. Case
// matters to S3, so "standard" is refused rather than sent on.
func parseStorageClass(v string) (types.StorageClass, string) {
	sc := types.StorageClass(v)
	if slices.Contains(sc.Values(), sc) {
		return sc, ""
	}
	names := make([]string, 0, len(sc.Values()))
	for _, x := range sc.Values() {
		names = append(names, string(x))
	}
	return "", "must be one of " + strings.Join(names, ", ") + "; got " + strconv.Quote(v)
}
