// Package dynamodb is the native driver for Dapr's state.aws.dynamodb: a
// state store kept in one AWS DynamoDB table, through aws-sdk-go-v2. It
// works with DynamoDB Local too.
//
// # Table and items
//
// The table must exist (Init checks with DescribeTable) and have a string
// partition key and no sort key. Items are laid out as Dapr's, so wapr and
// Dapr sidecars can share a table:
//
//	<partitionKey>  S  the state key (as the host prefixed it)
//	value           S  the data; B when the data is not valid UTF-8
//	etag            S  a random string, new on every write
//	<ttlAttribute>  N  expiry in Unix seconds, only for values with a TTL
//
// # Metadata
//
// Keys are matched case-insensitively, as Dapr does.
//
//	table             required; the table name
//	region            AWS region (alias awsRegion). Default: the
//	                  environment's (AWS_REGION or the shared config
//	                  profile); with an endpoint and no region anywhere,
//	                  us-east-1. Without endpoint and region Init fails.
//	endpoint          custom endpoint URL such as http://127.0.0.1:8000
//	                  (DynamoDB Local); default AWS's own. Without a scheme
//	                  it gets https://.
//	accessKey         static credentials; accessKey and secretKey go
//	secretKey         together, sessionToken needs both. Default: the SDK's
//	sessionToken      credential chain (environment, shared files, IMDS…)
//	partitionKey      name of the partition key attribute; default "key"
//	ttlAttributeName  attribute that holds expiries; setting it enables the
//	                  TTL feature. Enable TTL on that attribute in DynamoDB
//	                  too, or expired items are hidden but never deleted.
//	disableResponseChecksumValidation
//	                  true turns off the check of the CRC32 DynamoDB sends
//	                  with each response; default false. For DynamoDB
//	                  Local, some of whose answers come without a matching
//	                  CRC32, each logging a warning. wapr's own key.
//
// # Features and semantics
//
// ETAG and TRANSACTIONAL always; TTL when ttlAttributeName is set.
//
// A Set or Delete with a non-empty ETag succeeds only when the stored etag
// equals it (a conditional write); a Set with first-write concurrency and no
// ETag only when the key is absent. A failed condition is a
// *state.ETagError of kind ETagMismatch. ETags are opaque: any string is a
// well-formed ETag that simply does not match.
//
// Set with request metadata ttlInSeconds=N stores the expiry now+N (rounded
// up to the next whole second, so never early) in the
// TTL attribute; Get and BulkGet then report it as ttlExpireTime (RFC 3339,
// UTC). DynamoDB deletes expired items only eventually (DynamoDB Local
// never), so every read treats an item whose expiry has passed as absent,
// and so do ETag and first-write conditions. A Set without ttlInSeconds, or
// with -1, stores no expiry. Without ttlAttributeName a positive
// ttlInSeconds is refused (component.ErrNotSupported).
//
// Get reads eventually consistent unless the request asks for strong
// consistency, as in Dapr. A missing key is an error wrapping
// component.ErrNotFound.
//
// BulkGet reads with BatchGetItem (100 keys per call). BulkSet and
// BulkDelete send unconditional writes with BatchWriteItem (25 per call)
// and conditional ones one by one, in request order; they are not atomic.
// Multi applies up to 100 operations atomically with TransactWriteItems.
//
// # Errors
//
// An endpoint that cannot be reached (after the SDK's retries), and
// throttling, wrap component.ErrUnavailable and name the endpoint or
// region; requests DynamoDB rejects as invalid (an item over 400 KB, say)
// wrap component.ErrInvalidArgument.
//
// # Concurrency and ownership
//
// A Store is safe for concurrent use; all calls share one DynamoDB client
// and its connection pool. Values passed in are only read; returned data
// is the caller's. Close waits for calls in flight within its context's
// deadline, then aborts them.
package dynamodb

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/wapr-dev/wapr/builtin/internal/awsconfig"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/state"
)

var (
	_ state.Store         = (*Store)(nil)
	_ state.BulkStore     = (*Store)(nil)
	_ state.Transactional = (*Store)(nil)
)

// Attribute names of the value and its ETag (Dapr's).
const (
	attrValue = "value"
	attrETag  = "etag"
)

// Store is the state.aws.dynamodb state store. Create it with New, then
// Init. See the package documentation for its behaviour.
type Store struct {
	calls awsconfig.Calls
	sess  atomic.Pointer[session] // set once by a successful Init

	initMu sync.Mutex // serialises Init
	inited bool

	// now is the clock for TTLs; tests replace it before Init.
	now func() time.Time
	// clientOptions are applied to the DynamoDB client after the store's
	// own; tests use them to quiet the SDK. Set before Init.
	clientOptions []func(*dynamodb.Options)
}

// session is what a successful Init builds. It is immutable and shared by
// all calls.
type session struct {
	name      string // the component's name, for errors
	cfg       config
	where     string // the endpoint or region, for errors
	client    *dynamodb.Client
	transport *http.Transport
	now       func() time.Time
}

// New returns a Store that does nothing until Init.
func New() *Store { return &Store{now: time.Now} }

// Init parses the metadata (reporting every problem at once in a
// *component.ConfigError), builds the DynamoDB client and checks with
// DescribeTable that the table exists and has the expected key. It may be
// called once.
func (s *Store) Init(ctx context.Context, md component.Metadata) error {
	prefix := fmt.Sprintf("state.aws.dynamodb %q", md.Name)
	cfg, err := parseConfig(md)
	if err != nil {
		return fmt.Errorf("%s: %w", prefix, err)
	}
	ctx, end, err := s.calls.Begin(ctx)
	if err != nil {
		return fmt.Errorf("%s: Init: %w", prefix, err)
	}
	defer end()
	s.initMu.Lock()
	defer s.initMu.Unlock()
	if s.inited {
		return fmt.Errorf("%s: Init called twice", prefix)
	}
	s.inited = true

	conn, err := cfg.aws.Load(ctx, md)
	if err != nil {
		return fmt.Errorf("%s: %w", prefix, err)
	}
	opts := s.clientOptions
	if cfg.noResponseChecksum {
		// Only when asked: a custom endpoint may well be AWS itself (a VPC
		// endpoint, a proxy), whose responses deserve the check.
		opts = append([]func(*dynamodb.Options){func(o *dynamodb.Options) { o.DisableValidateResponseChecksum = true }}, opts...)
	}
	sess := &session{
		name:      md.Name,
		cfg:       cfg,
		where:     cfg.aws.Where(conn.Config.Region),
		client:    dynamodb.NewFromConfig(conn.Config, opts...),
		transport: conn.Transport,
		now:       s.now,
	}
	if err := sess.checkTable(ctx); err != nil {
		conn.Transport.CloseIdleConnections()
		return err
	}
	s.sess.Store(sess)
	return nil
}

// checkTable makes sure the table exists with a string partition key named
// as configured and no sort key, and warns when TTL is configured here but
// not enabled on the table. Credentials that may not describe the table
// get the weaker probeTable check instead.
func (s *session) checkTable(ctx context.Context) error {
	prefix := fmt.Sprintf("state.aws.dynamodb %q: table %q at %s", s.name, s.cfg.table, s.where)
	out, err := s.client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.cfg.table)})
	if err != nil {
		var nf *types.ResourceNotFoundException
		var api smithy.APIError
		switch {
		case ctx.Err() != nil:
			return fmt.Errorf("%s: %w", prefix, context.Cause(ctx))
		case awsconfig.Unreachable(err):
			return fmt.Errorf("%s: cannot reach the endpoint: %w: %w", prefix, component.ErrUnavailable, err)
		case errors.As(err, &nf):
			return fmt.Errorf("%s: the table does not exist (create it with a string partition key %q): %w",
				prefix, s.cfg.partitionKey, component.ErrNotFound)
		case errors.As(err, &api) && api.ErrorCode() == "AccessDeniedException":
			return s.probeTable(ctx, prefix, err)
		}
		return fmt.Errorf("%s: describing the table: %w", prefix, err)
	}
	if out.Table == nil {
		return fmt.Errorf("%s: DescribeTable returned no table description", prefix)
	}
	var hash string
	for _, k := range out.Table.KeySchema {
		switch k.KeyType {
		case types.KeyTypeHash:
			hash = aws.ToString(k.AttributeName)
		case types.KeyTypeRange:
			return fmt.Errorf("%s: the table has a sort key %q; the store needs a table with a partition key only: %w",
				prefix, aws.ToString(k.AttributeName), component.ErrInvalidArgument)
		}
	}
	if hash != s.cfg.partitionKey {
		return fmt.Errorf("%s: the table's partition key is %q, but metadata partitionKey is %q: %w",
			prefix, hash, s.cfg.partitionKey, component.ErrInvalidArgument)
	}
	for _, a := range out.Table.AttributeDefinitions {
		if aws.ToString(a.AttributeName) == hash && a.AttributeType != types.ScalarAttributeTypeS {
			return fmt.Errorf("%s: the partition key %q has type %s; the store needs a string (S): %w",
				prefix, hash, a.AttributeType, component.ErrInvalidArgument)
		}
	}
	if s.cfg.ttlAttribute != "" {
		ttl, err := s.client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(s.cfg.table)})
		if err == nil && ttl.TimeToLiveDescription != nil {
			d := ttl.TimeToLiveDescription
			on := d.TimeToLiveStatus == types.TimeToLiveStatusEnabled || d.TimeToLiveStatus == types.TimeToLiveStatusEnabling
			if !on || aws.ToString(d.AttributeName) != s.cfg.ttlAttribute {
				slog.Warn("DynamoDB TTL is not enabled on ttlAttributeName: expired values are hidden from reads but never deleted",
					"component", s.name, "type", "state.aws.dynamodb", "table", s.cfg.table,
					"ttlAttributeName", s.cfg.ttlAttribute, "tableTTLStatus", string(d.TimeToLiveStatus),
					"tableTTLAttribute", aws.ToString(d.AttributeName))
			}
		}
	}
	return nil
}

// probeTable checks the table with a GetItem of a random key when the
// credentials may not call DescribeTable (describeErr): a policy granting
// only item access is common, and Dapr checks the table that way. The key
// schema then goes unchecked beyond the partition key's name.
func (s *session) probeTable(ctx context.Context, prefix string, describeErr error) error {
	_, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.cfg.table),
		Key:       s.keyOf("wapr-init-probe-" + rand.Text()),
	})
	var nf *types.ResourceNotFoundException
	var api smithy.APIError
	switch {
	case err == nil:
		slog.Debug("DescribeTable denied; checked the table with GetItem instead",
			"component", s.name, "type", "state.aws.dynamodb", "table", s.cfg.table)
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %w", prefix, context.Cause(ctx))
	case awsconfig.Unreachable(err):
		return fmt.Errorf("%s: cannot reach the endpoint: %w: %w", prefix, component.ErrUnavailable, err)
	case errors.As(err, &nf):
		return fmt.Errorf("%s: the table does not exist (create it with a string partition key %q): %w",
			prefix, s.cfg.partitionKey, component.ErrNotFound)
	case errors.As(err, &api) && api.ErrorCode() == "ValidationException":
		return fmt.Errorf("%s: reading a key failed; does the table's partition key match metadata partitionKey %q? %w: %w",
			prefix, s.cfg.partitionKey, component.ErrInvalidArgument, err)
	}
	return fmt.Errorf("%s: describing the table: %w; reading a key: %w", prefix, describeErr, err)
}

// Close refuses new calls (they fail with component.ErrClosed), waits for
// the calls in flight until ctx ends, then aborts the rest and releases the
// pooled connections. It may be called more than once, also after a failed
// Init; later calls return nil.
func (s *Store) Close(ctx context.Context) error {
	first, err := s.calls.Close(ctx)
	if first {
		if sess := s.sess.Load(); sess != nil {
			sess.transport.CloseIdleConnections()
		}
	}
	if err != nil {
		return fmt.Errorf("state.aws.dynamodb: close: %w", err)
	}
	return nil
}

// Features reports ETAG and TRANSACTIONAL, plus TTL when ttlAttributeName
// is set (known after Init). The slice is the caller's.
func (s *Store) Features() []component.Feature {
	fs := []component.Feature{state.FeatureETag, state.FeatureTransactional}
	if sess := s.sess.Load(); sess != nil && sess.cfg.ttlAttribute != "" {
		fs = append(fs, state.FeatureTTL)
	}
	return fs
}

// MultiMaxSize is the most operations Multi accepts (DynamoDB's limit for
// TransactWriteItems). Dapr's runtime asks stores for it; the wapr contract
// has no such interface yet, so Multi enforces it itself.
func (s *Store) MultiMaxSize() int { return maxTransactionOps }

// begin registers a call and returns the session to use. end must be
// called when the call is over.
func (s *Store) begin(ctx context.Context) (context.Context, *session, func(), error) {
	ctx, end, err := s.calls.Begin(ctx)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("state.aws.dynamodb: %w", err)
	}
	sess := s.sess.Load()
	if sess == nil {
		end()
		return nil, nil, nil, errors.New("state.aws.dynamodb: used before a successful Init")
	}
	return ctx, sess, end, nil
}

// Get returns the value of req.Key with its ETag, and ttlExpireTime
// metadata when it has an expiry. A missing or expired key is an error
// wrapping component.ErrNotFound.
func (s *Store) Get(ctx context.Context, req *state.GetRequest) (*state.GetResponse, error) {
	ctx, sess, end, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer end()
	if req.Key == "" {
		return nil, sess.errorf("get", "", "%w: empty key", component.ErrInvalidArgument)
	}
	strong, err := consistency(req.Options.Consistency)
	if err != nil {
		return nil, sess.errorf("get", req.Key, "%w", err)
	}
	out, err := sess.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(sess.cfg.table),
		Key:            sess.keyOf(req.Key),
		ConsistentRead: aws.Bool(strong),
	})
	if err != nil {
		return nil, sess.fail(ctx, "get", req.Key, err)
	}
	v, ok, err := sess.decode(out.Item, sess.now().Unix())
	if err != nil {
		return nil, sess.errorf("get", req.Key, "%w", err)
	}
	if !ok {
		return nil, sess.errorf("get", req.Key, "%w", component.ErrNotFound)
	}
	return &state.GetResponse{Data: v.data, ETag: v.etag, Metadata: v.metadata()}, nil
}

// Set writes req.Value under req.Key, guarded by req.ETag or first-write
// concurrency (see the package documentation).
func (s *Store) Set(ctx context.Context, req *state.SetRequest) error {
	ctx, sess, end, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	w, err := sess.prepareSet(req, sess.now())
	if err != nil {
		return err
	}
	return sess.writeOne(ctx, w)
}

// Delete removes req.Key, guarded by req.ETag when it is not empty.
// Deleting a missing key without an ETag succeeds.
func (s *Store) Delete(ctx context.Context, req *state.DeleteRequest) error {
	ctx, sess, end, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	w, err := sess.prepareDelete(req, sess.now().Unix())
	if err != nil {
		return err
	}
	return sess.writeOne(ctx, w)
}

// write is a Set or Delete ready to send: validated, with its item (for a
// Set) and the condition guarding it.
type write struct {
	key  string
	del  bool
	item map[string]types.AttributeValue // nil for a delete
	cond condition
}

// condition is a DynamoDB condition expression with its placeholders. The
// zero value means unconditional.
type condition struct {
	expr   string
	names  map[string]string
	values map[string]types.AttributeValue
	// ifAbsent: the write may only create the item (first-write).
	ifAbsent bool
}

// guard builds the condition of a write with etag (nil or empty = none)
// and whether it is a first-write Set. now is in Unix seconds: with TTL on,
// an item that expired by then counts as absent.
func (s *session) guard(etag *string, firstWrite bool, now int64) condition {
	ttl := s.cfg.ttlAttribute
	switch {
	case etag != nil && *etag != "":
		c := condition{
			expr:   "#e = :e",
			names:  map[string]string{"#e": attrETag},
			values: map[string]types.AttributeValue{":e": &types.AttributeValueMemberS{Value: *etag}},
		}
		if ttl != "" {
			c.expr += " AND (attribute_not_exists(#t) OR #t > :now)"
			c.names["#t"] = ttl
			c.values[":now"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(now, 10)}
		}
		return c
	case firstWrite:
		c := condition{
			expr:     "attribute_not_exists(#k)",
			names:    map[string]string{"#k": s.cfg.partitionKey},
			ifAbsent: true,
		}
		if ttl != "" {
			c.expr += " OR #t <= :now"
			c.names["#t"] = ttl
			c.values = map[string]types.AttributeValue{":now": &types.AttributeValueMemberN{Value: strconv.FormatInt(now, 10)}}
		}
		return c
	}
	return condition{}
}

// conditional reports whether c guards its write.
func (c condition) conditional() bool { return c.expr != "" }

func (c condition) exprPtr() *string {
	if c.expr == "" {
		return nil
	}
	return aws.String(c.expr)
}

// prepareSet validates req and builds its item and condition. now is in
// Unix seconds.
func (s *session) prepareSet(req *state.SetRequest, at time.Time) (write, error) {
	now := at.Unix()
	if req.Key == "" {
		return write{}, s.errorf("set", "", "%w: empty key", component.ErrInvalidArgument)
	}
	if err := checkOptions(req.Options); err != nil {
		return write{}, s.errorf("set", req.Key, "%w", err)
	}
	ttl, hasTTL, err := state.ParseTTL(req.Metadata)
	if err != nil {
		return write{}, s.errorf("set", req.Key, "%w", err)
	}
	if hasTTL && s.cfg.ttlAttribute == "" {
		return write{}, s.errorf("set", req.Key, "%s needs metadata %s on the component: %w",
			state.MetadataTTL, keyTTLAttributeName, component.ErrNotSupported)
	}
	item := map[string]types.AttributeValue{
		s.cfg.partitionKey: &types.AttributeValueMemberS{Value: req.Key},
		attrValue:          encodeValue(req.Value),
		attrETag:           &types.AttributeValueMemberS{Value: newETag()},
	}
	if hasTTL {
		secs := int64(ttl / time.Second)
		if secs > math.MaxInt64-now-1 {
			return write{}, s.errorf("set", req.Key, "%w: %s is too large", component.ErrInvalidArgument, state.MetadataTTL)
		}
		// now is truncated to whole seconds; the expiry is rounded up
		// instead, so a value never expires before ttlInSeconds has passed
		// (written at 10.95 with 1 s, 10+1 would hide it at 11.0).
		exp := now + secs
		if at.Nanosecond() > 0 {
			exp++
		}
		item[s.cfg.ttlAttribute] = &types.AttributeValueMemberN{Value: strconv.FormatInt(exp, 10)}
	}
	return write{
		key:  req.Key,
		item: item,
		cond: s.guard(req.ETag, req.Options.Concurrency == state.FirstWrite, now),
	}, nil
}

// prepareDelete validates req and builds its condition. First-write does
// not guard a delete ("delete only if absent" could never do anything).
func (s *session) prepareDelete(req *state.DeleteRequest, now int64) (write, error) {
	if req.Key == "" {
		return write{}, s.errorf("delete", "", "%w: empty key", component.ErrInvalidArgument)
	}
	if err := checkOptions(req.Options); err != nil {
		return write{}, s.errorf("delete", req.Key, "%w", err)
	}
	return write{key: req.Key, del: true, cond: s.guard(req.ETag, false, now)}, nil
}

// writeOne sends one write with PutItem or DeleteItem.
func (s *session) writeOne(ctx context.Context, w write) error {
	var err error
	if w.del {
		_, err = s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
			TableName:                 aws.String(s.cfg.table),
			Key:                       s.keyOf(w.key),
			ConditionExpression:       w.cond.exprPtr(),
			ExpressionAttributeNames:  w.cond.names,
			ExpressionAttributeValues: w.cond.values,
		})
	} else {
		_, err = s.client.PutItem(ctx, &dynamodb.PutItemInput{
			TableName:                 aws.String(s.cfg.table),
			Item:                      w.item,
			ConditionExpression:       w.cond.exprPtr(),
			ExpressionAttributeNames:  w.cond.names,
			ExpressionAttributeValues: w.cond.values,
		})
	}
	if err == nil {
		return nil
	}
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return state.NewETagMismatch(w.key)
	}
	op := "set"
	if w.del {
		op = "delete"
	}
	return s.fail(ctx, op, w.key, err)
}

func (s *session) keyOf(key string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{s.cfg.partitionKey: &types.AttributeValueMemberS{Value: key}}
}

// value is a decoded item.
type value struct {
	data     []byte
	etag     string
	expireAt int64 // Unix seconds; 0 = none
}

func (v value) metadata() map[string]string {
	if v.expireAt == 0 {
		return nil
	}
	return map[string]string{state.MetadataTTLExpireTime: time.Unix(v.expireAt, 0).UTC().Format(time.RFC3339)}
}

// decode reads an item. ok is false when there is none, or when it expired
// by now (Unix seconds).
func (s *session) decode(item map[string]types.AttributeValue, now int64) (value, bool, error) {
	if len(item) == 0 {
		return value{}, false, nil
	}
	var v value
	if s.cfg.ttlAttribute != "" {
		if n, ok := item[s.cfg.ttlAttribute].(*types.AttributeValueMemberN); ok {
			exp, err := parseEpoch(n.Value)
			if err != nil {
				return value{}, false, fmt.Errorf("attribute %s holds %q, not an expiry in Unix seconds", s.cfg.ttlAttribute, n.Value)
			}
			if exp <= now {
				return value{}, false, nil
			}
			v.expireAt = exp
		}
	}
	switch a := item[attrValue].(type) {
	case *types.AttributeValueMemberS:
		v.data = []byte(a.Value)
	case *types.AttributeValueMemberB:
		v.data = append([]byte{}, a.Value...) // the caller's own copy
	case nil:
		v.data = []byte{}
	default:
		return value{}, false, fmt.Errorf("attribute %s has type %T; the store writes S or B", attrValue, a)
	}
	if e, ok := item[attrETag].(*types.AttributeValueMemberS); ok {
		v.etag = e.Value
	}
	return v, true, nil
}

// parseEpoch reads a DynamoDB number holding Unix seconds; other tools may
// write it with a fraction.
func parseEpoch(s string) (int64, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f > math.MaxInt64 || f < math.MinInt64 {
		return 0, errors.New("not a number")
	}
	return int64(f), nil
}

// encodeValue stores data as a string when it is valid UTF-8 (what Dapr
// writes for JSON values), as binary otherwise (what Dapr writes for raw
// bytes), so no byte is ever altered.
func encodeValue(data []byte) types.AttributeValue {
	if utf8.Valid(data) {
		return &types.AttributeValueMemberS{Value: string(data)}
	}
	return &types.AttributeValueMemberB{Value: append([]byte(nil), data...)}
}

// newETag returns a random ETag: 26 base32 characters (130 random bits),
// so two writes never produce the same one.
func newETag() string { return rand.Text() }

func checkOptions(o state.Options) error {
	switch o.Concurrency {
	case "", state.FirstWrite, state.LastWrite:
	default:
		return fmt.Errorf("%w: concurrency %q", component.ErrInvalidArgument, o.Concurrency)
	}
	_, err := consistency(o.Consistency)
	return err
}

// consistency reports whether c asks for a strongly consistent read.
func consistency(c string) (bool, error) {
	switch c {
	case "", state.Eventual:
		return false, nil
	case state.Strong:
		return true, nil
	}
	return false, fmt.Errorf("%w: consistency %q", component.ErrInvalidArgument, c)
}

// errorf formats an error about op on key (which may be empty).
func (s *session) errorf(op, key, format string, args ...any) error {
	prefix := fmt.Sprintf("state.aws.dynamodb %q: %s", s.name, op)
	if key != "" {
		prefix += " " + strconv.Quote(key)
	}
	return fmt.Errorf(prefix+": "+format, args...)
}

// fail reports a failed SDK call: a done context with its cause, an
// unreachable endpoint or throttling as component.ErrUnavailable, a request
// DynamoDB rejects as component.ErrInvalidArgument.
func (s *session) fail(ctx context.Context, op, key string, err error) error {
	var nf *types.ResourceNotFoundException
	var api smithy.APIError
	switch {
	case ctx.Err() != nil:
		return s.errorf(op, key, "%w", context.Cause(ctx))
	case awsconfig.Unreachable(err):
		return s.errorf(op, key, "cannot reach %s: %w: %w", s.where, component.ErrUnavailable, err)
	case errors.As(err, &nf):
		// Not ErrNotFound: that would read as "no such key".
		return s.errorf(op, key, "table %q does not exist at %s: %w", s.cfg.table, s.where, err)
	case errors.As(err, &api):
		switch api.ErrorCode() {
		case "ValidationException":
			return s.errorf(op, key, "%w: %w", component.ErrInvalidArgument, err)
		case "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded":
			return s.errorf(op, key, "throttled: %w: %w", component.ErrUnavailable, err)
		}
	}
	return s.errorf(op, key, "%w", err)
}
