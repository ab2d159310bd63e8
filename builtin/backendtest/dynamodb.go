package backendtest

import (
	"context"
	"crypto/rand"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// DynamoDB Local keeps tables apart per access key and region: tests and
// the stores under test use these.
const (
	DynamoDBRegion    = "us-east-1"
	DynamoDBAccessKey = "wapr"
	DynamoDBSecretKey = "wapr"
)

// DynamoDBEndpoint is DynamoDB Local's URL: WAPR_DYNAMODB_ENDPOINT, or
// where .ci/dynamodb-local starts it. The test is skipped (failed in CI)
// when nothing answers there.
func DynamoDBEndpoint(t testing.TB) string {
	t.Helper()
	ep := os.Getenv("WAPR_DYNAMODB_ENDPOINT")
	if ep == "" {
		ep = "http://127.0.0.1:8000"
	}
	u, err := url.Parse(ep)
	if err != nil || u.Host == "" {
		t.Fatalf("WAPR_DYNAMODB_ENDPOINT %q is not a URL", ep)
	}
	Require(t, "DynamoDB Local", u.Host, "bash .ci/dynamodb-local")
	return ep
}

var unsafeTableChars = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// DynamoDBTable creates a uniquely named table keyed by the string
// attribute "key" (TTL enabled on ttlAttribute when not empty), deleted
// when the test ends, and returns the endpoint and the table's name.
//
// A state.aws.dynamodb store on it should set the metadata
// disableResponseChecksumValidation to true: some answers of DynamoDB
// Local (a cancelled transaction, for one) come without a matching CRC32,
// which the SDK logs as a warning each time (this function's own client
// turns the check off for the same reason).
func DynamoDBTable(t testing.TB, ttlAttribute string) (endpoint, table string) {
	t.Helper()
	ep := DynamoDBEndpoint(t)
	c := dynamodb.New(dynamodb.Options{
		Region:       DynamoDBRegion,
		BaseEndpoint: aws.String(ep),
		Credentials:  credentials.NewStaticCredentialsProvider(DynamoDBAccessKey, DynamoDBSecretKey, ""),
	}, func(o *dynamodb.Options) { o.DisableValidateResponseChecksum = true })
	name := unsafeTableChars.ReplaceAllString(t.Name(), "-")
	if len(name) > 60 {
		name = name[:60]
	}
	name = "wapr-" + name + "-" + strings.ToLower(rand.Text()[:10])
	ctx := context.Background()
	_, err := c.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("key"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("key"), KeyType: types.KeyTypeHash}},
	})
	if err != nil {
		t.Fatalf("CreateTable %s: %v", name, err)
	}
	t.Cleanup(func() { c.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)}) })
	if err := dynamodb.NewTableExistsWaiter(c).Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, 30*time.Second); err != nil {
		t.Fatalf("waiting for table %s: %v", name, err)
	}
	if ttlAttribute != "" {
		_, err := c.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
			TableName:               aws.String(name),
			TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(ttlAttribute), Enabled: aws.Bool(true)},
		})
		if err != nil {
			t.Fatalf("UpdateTimeToLive %s: %v", name, err)
		}
	}
	return ep, name
}
