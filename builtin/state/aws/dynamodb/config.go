package dynamodb

import (
	"github.com/wapr-dev/wapr/builtin/internal/awsconfig"
	"github.com/wapr-dev/wapr/host/component"
)

// Component metadata keys besides the shared AWS ones (region, awsRegion,
// endpoint, accessKey, secretKey, sessionToken), as Dapr spells them.
const (
	keyTable            = "table"
	keyPartitionKey     = "partitionKey"
	keyTTLAttributeName = "ttlAttributeName"
	// keyDisableResponseChecksum is wapr's own; Dapr ignores it.
	keyDisableResponseChecksum = "disableResponseChecksumValidation"
)

// DefaultPartitionKey is the name of the table's partition key attribute
// when the metadata names none (Dapr's default).
const DefaultPartitionKey = "key"

// config is the parsed component metadata. It is immutable after
// parseConfig.
type config struct {
	table        string
	aws          awsconfig.Settings
	partitionKey string // attribute holding the state key; never empty
	ttlAttribute string // attribute holding the expiry; "" = no TTL feature
	// noResponseChecksum turns off the SDK's check of the CRC32 that
	// DynamoDB sends with each response. Some answers of DynamoDB Local (a
	// cancelled transaction, for one) come without a matching CRC32, and
	// the SDK logs a warning for each.
	noResponseChecksum bool
}

// parseConfig reads every metadata key, applies the defaults and reports
// every problem at once as a *component.ConfigError.
//
// The region is not checked here: with neither a region nor an endpoint in
// the metadata, Init takes it from the environment (AWS_REGION or the
// shared config profile) and fails when there is none.
func parseConfig(md component.Metadata) (config, error) {
	r := component.NewConfigReader(md)
	c := config{
		table:        r.Required(keyTable),
		aws:          awsconfig.Read(r, "https"),
		partitionKey: r.String(keyPartitionKey, DefaultPartitionKey),
		ttlAttribute: r.String(keyTTLAttributeName, ""),

		noResponseChecksum: r.Bool(keyDisableResponseChecksum, false),
	}
	switch c.ttlAttribute {
	case c.partitionKey, attrValue, attrETag:
		if c.ttlAttribute != "" {
			r.Fail(keyTTLAttributeName, "must differ from the partition key and from the value and etag attributes")
		}
	}
	if c.partitionKey == attrValue || c.partitionKey == attrETag {
		r.Fail(keyPartitionKey, "must differ from the value and etag attributes")
	}
	if err := r.Err(); err != nil {
		return config{}, err
	}
	return c, nil
}
