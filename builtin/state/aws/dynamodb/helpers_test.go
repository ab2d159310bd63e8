package dynamodb

import (
	"context"
	"crypto/rand"
	"io"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wapr-dev/wapr/builtin/backendtest"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/state"
)

// DynamoDB Local keeps tables apart per access key and region, so the
// tests' own client and every store use these.
const (
	testRegion    = "us-east-1"
	testAccessKey = "wapr"
	testSecretKey = "wapr"
)

// quiet stops the SDK from checking the CRC32 of responses: some of
// DynamoDB Local's answers make it log a harmless WARN otherwise. It is the
// tests' own client's disableResponseChecksumValidation, which storeProps
// sets for the stores.
func quiet(o *dynamodb.Options) { o.DisableValidateResponseChecksum = true }

// endpoint is DynamoDB Local's URL: WAPR_DYNAMODB_ENDPOINT, or where
// .ci/dynamodb-local starts it.
func endpoint() string {
	if v := os.Getenv("WAPR_DYNAMODB_ENDPOINT"); v != "" {
		return v
	}
	return "http://127.0.0.1:8000"
}

// requireDynamoDB skips the test (fails it in CI) when DynamoDB Local is
// not running, and returns its endpoint.
func requireDynamoDB(t *testing.T) string {
	t.Helper()
	ep := endpoint()
	u, err := url.Parse(ep)
	if err != nil || u.Host == "" {
		t.Fatalf("WAPR_DYNAMODB_ENDPOINT %q is not a URL", ep)
	}
	backendtest.Require(t, "DynamoDB Local", u.Host, "bash .ci/dynamodb-local")
	return ep
}

// admin is a client of the tests' own, to create tables and look at items
// behind the store's back.
func admin(ep string) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:       testRegion,
		BaseEndpoint: aws.String(ep),
		Credentials:  credentials.NewStaticCredentialsProvider(testAccessKey, testSecretKey, ""),
	}, quiet)
}

var unsafeTableChars = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// tableSpec is a table a test creates.
type tableSpec struct {
	partitionKey string // default "key"
	sortKey      string // "" = none
	ttlAttribute string // "" = TTL not enabled on the table
	numericKey   bool   // partition key of type N
}

// createTable creates a uniquely named table, deleted when the test ends.
func createTable(t *testing.T, ep string, spec tableSpec) string {
	t.Helper()
	pk := spec.partitionKey
	if pk == "" {
		pk = DefaultPartitionKey
	}
	name := unsafeTableChars.ReplaceAllString(t.Name(), "-")
	if len(name) > 60 {
		name = name[:60]
	}
	name = "wapr-" + name + "-" + strings.ToLower(rand.Text()[:10])
	pkType := types.ScalarAttributeTypeS
	if spec.numericKey {
		pkType = types.ScalarAttributeTypeN
	}
	in := &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(pk), AttributeType: pkType}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(pk), KeyType: types.KeyTypeHash}},
	}
	if spec.sortKey != "" {
		in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{AttributeName: aws.String(spec.sortKey), AttributeType: types.ScalarAttributeTypeS})
		in.KeySchema = append(in.KeySchema, types.KeySchemaElement{AttributeName: aws.String(spec.sortKey), KeyType: types.KeyTypeRange})
	}
	c := admin(ep)
	ctx := context.Background()
	if _, err := c.CreateTable(ctx, in); err != nil {
		t.Fatalf("CreateTable %s: %v", name, err)
	}
	t.Cleanup(func() {
		if _, err := c.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)}); err != nil {
			t.Errorf("DeleteTable %s: %v", name, err)
		}
	})
	if err := dynamodb.NewTableExistsWaiter(c).Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, 30*time.Second); err != nil {
		t.Fatalf("waiting for table %s: %v", name, err)
	}
	if spec.ttlAttribute != "" {
		_, err := c.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
			TableName:               aws.String(name),
			TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(spec.ttlAttribute), Enabled: aws.Bool(true)},
		})
		if err != nil {
			t.Fatalf("UpdateTimeToLive %s: %v", name, err)
		}
	}
	return name
}

// clock is a manual clock safe for concurrent use.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func md(props map[string]string) component.Metadata {
	return component.Metadata{Name: "mystore", Type: "state.aws.dynamodb", Version: "v1", Properties: props}
}

// storeProps returns the metadata of a store on table at ep plus extra.
func storeProps(ep, table string, extra map[string]string) map[string]string {
	p := map[string]string{
		"table": table, "endpoint": ep, "region": testRegion,
		"accessKey": testAccessKey, "secretKey": testSecretKey,
		"disableResponseChecksumValidation": "true",
	}
	for k, v := range extra {
		p[k] = v
	}
	return p
}

// newStore returns an initialised store on its own table, closed at the
// end of the test, and the store's clock.
func newStore(t *testing.T, spec tableSpec, extra map[string]string) (*Store, *clock, string) {
	t.Helper()
	ep := requireDynamoDB(t)
	table := createTable(t, ep, spec)
	s := New()
	c := newClock()
	s.now = c.Now
	if err := s.Init(context.Background(), md(storeProps(ep, table, extra))); err != nil {
		t.Fatalf("Init: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, c, table
}

// rawItem reads key's item straight from the table.
func rawItem(t *testing.T, table, pk, key string) map[string]types.AttributeValue {
	t.Helper()
	out, err := admin(endpoint()).GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(table), Key: map[string]types.AttributeValue{pk: &types.AttributeValueMemberS{Value: key}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatalf("GetItem(%q): %v", key, err)
	}
	return out.Item
}

func ptr(s string) *string { return &s }

func mustSet(t *testing.T, s *Store, key, value string) string {
	t.Helper()
	if err := s.Set(context.Background(), &state.SetRequest{Key: key, Value: []byte(value)}); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
	return mustGet(t, s, key).ETag
}

func mustGet(t *testing.T, s *Store, key string) *state.GetResponse {
	t.Helper()
	resp, err := s.Get(context.Background(), &state.GetRequest{Key: key, Options: state.Options{Consistency: state.Strong}})
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return resp
}

func wantValue(t *testing.T, s *Store, key, want string) {
	t.Helper()
	if got := mustGet(t, s, key); string(got.Data) != want {
		t.Errorf("Get(%q) = %q, want %q", key, got.Data, want)
	}
}

func wantMissing(t *testing.T, s *Store, key string) {
	t.Helper()
	resp, err := s.Get(context.Background(), &state.GetRequest{Key: key, Options: state.Options{Consistency: state.Strong}})
	if err == nil {
		t.Errorf("Get(%q) = %q, want not found", key, resp.Data)
		return
	}
	if !isNotFound(err) {
		t.Errorf("Get(%q): err = %v, want ErrNotFound", key, err)
	}
}

// proxy is a TCP relay to a backend that a test can cut, making the
// backend unreachable for a client that was set up through it.
type proxy struct {
	URL string
	ln  net.Listener

	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func newProxy(t *testing.T, backendURL string) *proxy {
	t.Helper()
	u, err := url.Parse(backendURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{URL: "http://" + ln.Addr().String(), ln: ln}
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", u.Host)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, b)
			p.mu.Unlock()
			p.wg.Go(func() { _, _ = io.Copy(b, c); b.Close() })
			p.wg.Go(func() { _, _ = io.Copy(c, b); c.Close() })
		}
	})
	t.Cleanup(p.Cut)
	return p
}

// Cut closes the listener and every relayed connection, and waits for the
// relay goroutines to end.
func (p *proxy) Cut() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}
