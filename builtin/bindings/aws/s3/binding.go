// Package s3 is the native driver for Dapr's bindings.aws.s3 output binding:
// each invocation stores, reads, deletes, lists or presigns objects in one
// S3 bucket (AWS S3 or any S3-compatible store such as MinIO), through
// aws-sdk-go-v2.
//
// # Metadata
//
// Keys are matched case-insensitively, as Dapr does. Boolean keys accept
// true/false (also 1/0, t/f); anything else is a configuration error.
//
//	bucket          required; the bucket every operation works on
//	region          AWS region (alias awsRegion). Default: the environment's
//	                (AWS_REGION or the shared config profile); with an
//	                endpoint and no region anywhere, us-east-1. Without
//	                endpoint and region Init fails.
//	endpoint        custom S3 endpoint URL, e.g. http://127.0.0.1:9000;
//	                default AWS's own. Written without a scheme it gets
//	                https://, or http:// with disableSSL.
//	forcePathStyle  address objects as endpoint/bucket/key instead of
//	                bucket.endpoint/key (needed by most emulators); default false
//	accessKey       static credentials; accessKey and secretKey go together,
//	secretKey       sessionToken needs both. Default: the SDK's credential
//	sessionToken    chain (environment, shared files, web identity, IMDS)
//	decodeBase64    create decodes the data from base64 before storing it; default false
//	encodeBase64    get returns the object base64-encoded; default false
//	disableSSL      use http:// for an endpoint given without a scheme; default false
//	insecureSSL     do not verify the endpoint's TLS certificate; default false
//	storageClass    storage class of created objects (STANDARD, STANDARD_IA,
//	                GLACIER, …); default the bucket's
//
// # Operations
//
//	create   stores data under request metadata key (a random UUID when
//	         absent). Request metadata: key, Content-Type, decodeBase64,
//	         storageClass, tags ("k1=v1,k2=v2"), presignTTL (also presign
//	         the new object). Returns {"location","versionID","presignURL"}
//	         (presignURL only with presignTTL) and response metadata key.
//	get      returns the object named by key (required); encodeBase64
//	         overrides the component setting. A missing object is an error
//	         wrapping component.ErrNotFound ("object not found").
//	delete   deletes the object named by key (required); no content.
//	         Deleting a missing object succeeds, as in S3.
//	list     data {"maxResults":N,"prefix":"","marker":"","delimiter":""}
//	         (all optional; maxResults defaults to 1000) → S3's ListObjects
//	         answer as JSON, in the shape Dapr returns (Contents, CommonPrefixes,
//	         IsTruncated, NextMarker, …).
//	presign  returns {"presignURL":"…"}, a GET URL for key valid for
//	         presignTTL (a Go duration such as 15m, at most 7 days); both required.
//
// Any other operation is refused with an error wrapping
// component.ErrNotSupported. A JSON string as data (Dapr's HTTP API sends
// data as JSON) is stored unquoted; other JSON is stored as its text.
//
// # Errors
//
// Bad request metadata wraps component.ErrInvalidArgument; an endpoint that
// cannot be reached (after the SDK's retries) wraps component.ErrUnavailable
// and names the endpoint. Init fails when the bucket does not exist or
// cannot be reached, naming the component and the bucket.
//
// # Concurrency and ownership
//
// A Binding is safe for concurrent use; all calls share one S3 client and
// its connection pool. Request data is only read; returned data is the
// caller's. Close waits for calls in flight within its context's deadline,
// then aborts them.
package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdks3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/wapr-dev/wapr/builtin/internal/awsconfig"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/bindings"
)

var _ bindings.Output = (*Binding)(nil)

// OperationPresign returns a presigned GET URL for an object. It is
// offered besides Dapr's generic create, get, delete and list.
const OperationPresign bindings.Operation = "presign"

var operations = []bindings.Operation{
	bindings.OperationCreate, bindings.OperationGet, bindings.OperationDelete,
	bindings.OperationList, OperationPresign,
}

// Request metadata keys, as Dapr spells them (matched exactly).
const (
	mdKey          = "key"
	mdContentType  = "Content-Type"
	mdDecodeBase64 = "decodeBase64"
	mdEncodeBase64 = "encodeBase64"
	mdPresignTTL   = "presignTTL"
	mdStorageClass = "storageClass"
	mdTags         = "tags"
	mdFilePath     = "filePath"
)

const (
	// defaultMaxResults is list's page size when the request names none
	// (S3's own maximum).
	defaultMaxResults = 1000
	// maxPresignTTL is the longest validity SigV4 allows a presigned URL.
	maxPresignTTL = 7 * 24 * time.Hour
	jsonType      = "application/json"
)

// Binding is the bindings.aws.s3 output binding. Create it with New, then
// Init. See the package documentation for its behaviour.
type Binding struct {
	calls awsconfig.Calls
	sess  atomic.Pointer[session] // set once by a successful Init

	initMu sync.Mutex // serialises Init
	inited bool

	// clientOptions are applied to the S3 client after the binding's own;
	// tests use them to quiet the SDK. Set before Init.
	clientOptions []func(*sdks3.Options)
}

// session is what a successful Init builds. It is immutable and shared by
// all calls.
type session struct {
	name      string // the component's name, for errors
	cfg       config
	where     string // the endpoint or region, for errors
	client    *sdks3.Client
	presigner *sdks3.PresignClient
	transport *http.Transport
}

// New returns a Binding that does nothing until Init.
func New() *Binding { return &Binding{} }

// Init parses the metadata (reporting every problem at once in a
// *component.ConfigError), builds the S3 client and checks with HeadBucket
// that the bucket exists and is reachable. It may be called once.
func (b *Binding) Init(ctx context.Context, md component.Metadata) error {
	prefix := fmt.Sprintf("bindings.aws.s3 %q", md.Name)
	cfg, err := parseConfig(md)
	if err != nil {
		return fmt.Errorf("%s: %w", prefix, err)
	}
	ctx, end, err := b.calls.Begin(ctx)
	if err != nil {
		return fmt.Errorf("%s: Init: %w", prefix, err)
	}
	defer end()
	b.initMu.Lock()
	defer b.initMu.Unlock()
	if b.inited {
		return fmt.Errorf("%s: Init called twice", prefix)
	}
	b.inited = true

	conn, err := cfg.aws.Load(ctx, md)
	if err != nil {
		return fmt.Errorf("%s: %w", prefix, err)
	}
	client := sdks3.NewFromConfig(conn.Config, append([]func(*sdks3.Options){func(o *sdks3.Options) {
		o.UsePathStyle = cfg.forcePathStyle
		// Objects uploaded without a checksum (multipart, other tools)
		// make the SDK log a warning on every get; it is not actionable.
		o.DisableLogOutputChecksumValidationSkipped = true
	}}, b.clientOptions...)...)
	s := &session{
		name:      md.Name,
		cfg:       cfg,
		where:     cfg.aws.Where(conn.Config.Region),
		client:    client,
		presigner: sdks3.NewPresignClient(client),
		transport: conn.Transport,
	}
	if err := s.checkBucket(ctx); err != nil {
		conn.Transport.CloseIdleConnections()
		return err
	}
	b.sess.Store(s)
	return nil
}

// checkBucket makes sure the bucket exists and can be reached. Access
// denied is only a warning: see below.
func (s *session) checkBucket(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &sdks3.HeadBucketInput{Bucket: aws.String(s.cfg.bucket)})
	if err == nil {
		return nil
	}
	prefix := fmt.Sprintf("bindings.aws.s3 %q: bucket %q at %s", s.name, s.cfg.bucket, s.where)
	var notFound *types.NotFound
	var noBucket *types.NoSuchBucket
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %w", prefix, context.Cause(ctx))
	case awsconfig.Unreachable(err):
		return fmt.Errorf("%s: cannot reach the endpoint: %w: %w", prefix, component.ErrUnavailable, err)
	case errors.As(err, &notFound), errors.As(err, &noBucket), awsconfig.HTTPStatus(err) == http.StatusNotFound:
		return fmt.Errorf("%s: the bucket does not exist: %w", prefix, component.ErrNotFound)
	case awsconfig.HTTPStatus(err) == http.StatusForbidden:
		// HeadBucket needs s3:ListBucket, which a policy granting only
		// object access lacks (Dapr checks nothing at init). The bucket
		// may still be usable: go on, and let the operations report.
		slog.Warn("bindings.aws.s3: cannot check the bucket (HeadBucket: access denied); object operations may still work",
			"component", s.name, "type", "bindings.aws.s3", "bucket", s.cfg.bucket, "where", s.where)
		return nil
	case awsconfig.HTTPStatus(err) == http.StatusMovedPermanently:
		return fmt.Errorf("%s: the bucket is in another region (set metadata region): %w", prefix, err)
	}
	return fmt.Errorf("%s: checking the bucket: %w", prefix, err)
}

// Close refuses new calls (they fail with component.ErrClosed), waits for
// the calls in flight until ctx ends, then aborts the rest and releases the
// pooled connections. It may be called more than once, also after a failed
// Init; later calls return nil.
func (b *Binding) Close(ctx context.Context) error {
	first, err := b.calls.Close(ctx)
	if first {
		if s := b.sess.Load(); s != nil {
			s.transport.CloseIdleConnections()
		}
	}
	if err != nil {
		return fmt.Errorf("bindings.aws.s3: close: %w", err)
	}
	return nil
}

// Operations lists create, get, delete, list and presign. The caller owns
// the slice.
func (b *Binding) Operations() []bindings.Operation {
	return append([]bindings.Operation(nil), operations...)
}

// Invoke runs one operation; see the package documentation. The returned
// response is owned by the caller; delete returns a nil response (no
// content).
func (b *Binding) Invoke(ctx context.Context, req *bindings.InvokeRequest) (*bindings.InvokeResponse, error) {
	if req == nil {
		return nil, fmt.Errorf("bindings.aws.s3: nil request: %w", component.ErrInvalidArgument)
	}
	ctx, end, err := b.calls.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("bindings.aws.s3: %w", err)
	}
	defer end()
	s := b.sess.Load()
	if s == nil {
		return nil, errors.New("bindings.aws.s3: Invoke before a successful Init")
	}
	switch req.Operation {
	case bindings.OperationCreate:
		return s.create(ctx, req)
	case bindings.OperationGet:
		return s.get(ctx, req)
	case bindings.OperationDelete:
		return nil, s.delete(ctx, req)
	case bindings.OperationList:
		return s.list(ctx, req)
	case OperationPresign:
		return s.presign(ctx, req)
	}
	names := make([]string, len(operations))
	for i, op := range operations {
		names[i] = string(op)
	}
	return nil, fmt.Errorf("bindings.aws.s3 %q: operation %q: %w; supported: %s",
		s.name, req.Operation, component.ErrNotSupported, strings.Join(names, ", "))
}

// createResponse is create's answer, field for field as Dapr's.
type createResponse struct {
	Location   string  `json:"location"`
	VersionID  *string `json:"versionID"`
	PresignURL string  `json:"presignURL,omitempty"`
}

type presignResponse struct {
	PresignURL string `json:"presignURL"`
}

// listRequest is list's data, as Dapr reads it.
type listRequest struct {
	MaxResults int32  `json:"maxResults"`
	Prefix     string `json:"prefix"`
	Marker     string `json:"marker"`
	Delimiter  string `json:"delimiter"`
}

func (s *session) create(ctx context.Context, req *bindings.InvokeRequest) (*bindings.InvokeResponse, error) {
	const op = bindings.OperationCreate
	md := req.Metadata
	if md[mdFilePath] != "" {
		return nil, s.invalid(op, "", fmt.Errorf("request metadata %s (upload a file from the sidecar's disk) is %w: send the content as data",
			mdFilePath, component.ErrNotSupported))
	}
	key := md[mdKey]
	if key == "" {
		var err error
		if key, err = newUUID(); err != nil {
			return nil, s.opError(ctx, op, "", err)
		}
	}
	decode, err := boolMetadata(md, mdDecodeBase64, s.cfg.decodeBase64)
	if err != nil {
		return nil, s.invalid(op, key, err)
	}
	data := unquote(req.Data)
	if decode {
		decoded, err := base64.StdEncoding.DecodeString(string(data))
		if err != nil {
			return nil, s.invalid(op, key, fmt.Errorf("%w: data is not valid base64 (decodeBase64 is on): %w", component.ErrInvalidArgument, err))
		}
		data = decoded
	}
	in := &sdks3.PutObjectInput{
		Bucket:        aws.String(s.cfg.bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(data), // seekable: the SDK refuses unseekable bodies over plain HTTP
		ContentLength: aws.Int64(int64(len(data))),
		StorageClass:  s.cfg.storageClass,
	}
	if ct := strings.TrimSpace(md[mdContentType]); ct != "" {
		in.ContentType = aws.String(ct)
	}
	if v := md[mdStorageClass]; v != "" {
		sc, problem := parseStorageClass(v)
		if problem != "" {
			return nil, s.invalid(op, key, fmt.Errorf("%w: request metadata %s %s", component.ErrInvalidArgument, mdStorageClass, problem))
		}
		in.StorageClass = sc
	}
	if raw, ok := md[mdTags]; ok && strings.TrimSpace(raw) != "" {
		tagging, err := parseTags(raw)
		if err != nil {
			return nil, s.invalid(op, key, err)
		}
		in.Tagging = aws.String(tagging)
	}
	var ttl time.Duration
	if v := md[mdPresignTTL]; v != "" {
		if ttl, err = parsePresignTTL(v); err != nil {
			return nil, s.invalid(op, key, err)
		}
	}

	var location string
	out, err := s.client.PutObject(ctx, in, recordURL(&location))
	if err != nil {
		return nil, s.opError(ctx, op, key, err)
	}
	resp := createResponse{Location: location, VersionID: out.VersionId}
	if ttl > 0 {
		if resp.PresignURL, err = s.presignGet(ctx, key, ttl); err != nil {
			return nil, s.opError(ctx, op, key, err)
		}
	}
	body, err := json.Marshal(resp)
	if err != nil {
		return nil, s.opError(ctx, op, key, err)
	}
	return &bindings.InvokeResponse{Data: body, ContentType: jsonType, Metadata: map[string]string{mdKey: key}}, nil
}

func (s *session) get(ctx context.Context, req *bindings.InvokeRequest) (*bindings.InvokeResponse, error) {
	const op = bindings.OperationGet
	key, err := requiredKey(req.Metadata)
	if err != nil {
		return nil, s.invalid(op, "", err)
	}
	encode, err := boolMetadata(req.Metadata, mdEncodeBase64, s.cfg.encodeBase64)
	if err != nil {
		return nil, s.invalid(op, key, err)
	}
	out, err := s.client.GetObject(ctx, &sdks3.GetObjectInput{Bucket: aws.String(s.cfg.bucket), Key: aws.String(key)})
	if err != nil {
		return nil, s.opError(ctx, op, key, err)
	}
	defer out.Body.Close()
	var buf bytes.Buffer
	if n := aws.ToInt64(out.ContentLength); n > 0 && n < 64<<20 {
		buf.Grow(int(n)) // a hint only; a larger object grows as it is read
	}
	if _, err := buf.ReadFrom(out.Body); err != nil {
		return nil, s.opError(ctx, op, key, fmt.Errorf("reading the object: %w", err))
	}
	data := buf.Bytes()
	if encode {
		data = []byte(base64.StdEncoding.EncodeToString(data))
	}
	return &bindings.InvokeResponse{Data: data}, nil
}

func (s *session) delete(ctx context.Context, req *bindings.InvokeRequest) error {
	const op = bindings.OperationDelete
	key, err := requiredKey(req.Metadata)
	if err != nil {
		return s.invalid(op, "", err)
	}
	_, err = s.client.DeleteObject(ctx, &sdks3.DeleteObjectInput{Bucket: aws.String(s.cfg.bucket), Key: aws.String(key)})
	if err != nil {
		return s.opError(ctx, op, key, err)
	}
	return nil
}

func (s *session) list(ctx context.Context, req *bindings.InvokeRequest) (*bindings.InvokeResponse, error) {
	const op = bindings.OperationList
	var lr listRequest
	if d := bytes.TrimSpace(req.Data); len(d) > 0 && string(d) != "null" {
		if err := json.Unmarshal(d, &lr); err != nil {
			return nil, s.invalid(op, "", fmt.Errorf("%w: data must be {\"maxResults\":N,\"prefix\":\"\",\"marker\":\"\",\"delimiter\":\"\"}: %w",
				component.ErrInvalidArgument, err))
		}
	}
	if lr.MaxResults < 1 {
		lr.MaxResults = defaultMaxResults
	}
	in := &sdks3.ListObjectsInput{Bucket: aws.String(s.cfg.bucket), MaxKeys: aws.Int32(lr.MaxResults)}
	if lr.Prefix != "" {
		in.Prefix = aws.String(lr.Prefix)
	}
	if lr.Marker != "" {
		in.Marker = aws.String(lr.Marker)
	}
	if lr.Delimiter != "" {
		in.Delimiter = aws.String(lr.Delimiter)
	}
	out, err := s.client.ListObjects(ctx, in)
	if err != nil {
		return nil, s.opError(ctx, op, "", err)
	}
	// The SDK's output struct, marshalled as is: the shape Dapr returns.
	body, err := json.Marshal(out)
	if err != nil {
		return nil, s.opError(ctx, op, "", err)
	}
	return &bindings.InvokeResponse{Data: body, ContentType: jsonType}, nil
}

func (s *session) presign(ctx context.Context, req *bindings.InvokeRequest) (*bindings.InvokeResponse, error) {
	const op = OperationPresign
	key, err := requiredKey(req.Metadata)
	if err != nil {
		return nil, s.invalid(op, "", err)
	}
	v := req.Metadata[mdPresignTTL]
	if v == "" {
		return nil, s.invalid(op, key, fmt.Errorf("%w: request metadata %s is required (a duration such as 15m)", component.ErrInvalidArgument, mdPresignTTL))
	}
	ttl, err := parsePresignTTL(v)
	if err != nil {
		return nil, s.invalid(op, key, err)
	}
	u, err := s.presignGet(ctx, key, ttl)
	if err != nil {
		return nil, s.opError(ctx, op, key, err)
	}
	body, err := json.Marshal(presignResponse{PresignURL: u})
	if err != nil {
		return nil, s.opError(ctx, op, key, err)
	}
	return &bindings.InvokeResponse{Data: body, ContentType: jsonType}, nil
}

// presignGet signs a GET of key valid for ttl. It makes no network call
// with static credentials.
func (s *session) presignGet(ctx context.Context, key string, ttl time.Duration) (string, error) {
	r, err := s.presigner.PresignGetObject(ctx, &sdks3.GetObjectInput{Bucket: aws.String(s.cfg.bucket), Key: aws.String(key)},
		func(o *sdks3.PresignOptions) { o.Expires = ttl })
	if err != nil {
		return "", fmt.Errorf("presigning: %w", err)
	}
	return r.URL, nil
}

// recordURL returns a per-call option that stores the URL the request was
// sent to, without its query, in *dst: create's location.
func recordURL(dst *string) func(*sdks3.Options) {
	return func(o *sdks3.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("waprRecordURL",
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
					if req, ok := in.Request.(*smithyhttp.Request); ok && req.URL != nil {
						u := *req.URL
						u.RawQuery, u.Fragment, u.User = "", "", nil
						*dst = u.String()
					}
					return next.HandleFinalize(ctx, in)
				}), middleware.After)
		})
	}
}

// opError reports a failed SDK call: a done context with its cause, an
// unreachable endpoint as component.ErrUnavailable, a missing object or
// bucket as component.ErrNotFound.
func (s *session) opError(ctx context.Context, op bindings.Operation, key string, err error) error {
	prefix := s.prefix(op, key)
	var noKey *types.NoSuchKey
	var noBucket *types.NoSuchBucket
	var notFound *types.NotFound
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %w", prefix, context.Cause(ctx))
	case awsconfig.Unreachable(err):
		return fmt.Errorf("%s: cannot reach %s: %w: %w", prefix, s.where, component.ErrUnavailable, err)
	case errors.As(err, &noBucket):
		return fmt.Errorf("%s: bucket %q does not exist: %w", prefix, s.cfg.bucket, component.ErrNotFound)
	case errors.As(err, &noKey), errors.As(err, &notFound):
		return fmt.Errorf("%s: object %w", prefix, component.ErrNotFound) // "object not found", as Dapr says
	}
	return fmt.Errorf("%s: %w", prefix, err)
}

// invalid reports a bad request; err already wraps the sentinel.
func (s *session) invalid(op bindings.Operation, key string, err error) error {
	return fmt.Errorf("%s: %w", s.prefix(op, key), err)
}

func (s *session) prefix(op bindings.Operation, key string) string {
	if key == "" {
		return fmt.Sprintf("bindings.aws.s3 %q: %s", s.name, op)
	}
	return fmt.Sprintf("bindings.aws.s3 %q: %s %q", s.name, op, key)
}

func requiredKey(md map[string]string) (string, error) {
	if k := md[mdKey]; k != "" {
		return k, nil
	}
	return "", fmt.Errorf("%w: request metadata %s is required", component.ErrInvalidArgument, mdKey)
}

// boolMetadata reads a request flag strictly: absent or empty means def.
func boolMetadata(md map[string]string, key string, def bool) (bool, error) {
	v := strings.TrimSpace(md[key])
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%w: request metadata %s must be true or false, got %q", component.ErrInvalidArgument, key, v)
	}
	return b, nil
}

func parsePresignTTL(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 || d > maxPresignTTL {
		return 0, fmt.Errorf("%w: request metadata %s must be a duration between 1s and 168h such as 15m, got %q",
			component.ErrInvalidArgument, mdPresignTTL, v)
	}
	return d, nil
}

// parseTags turns Dapr's "k1=v1,k2=v2" into S3's URL-encoded tagging.
func parseTags(raw string) (string, error) {
	vals := url.Values{}
	for entry := range strings.SplitSeq(raw, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(entry), "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" || v == "" {
			return "", fmt.Errorf("%w: request metadata %s must be key=value pairs separated by commas, got %q",
				component.ErrInvalidArgument, mdTags, entry)
		}
		vals.Add(k, v)
	}
	return vals.Encode(), nil
}

// unquote returns the bytes to store for data: Dapr's HTTP API hands data
// over as JSON, so a JSON string is stored unquoted and JSON null (no data)
// as an empty object; anything else is stored as it is.
func unquote(data []byte) []byte {
	d := bytes.TrimSpace(data)
	switch {
	case string(d) == "null":
		return nil
	case len(d) > 0 && d[0] == '"':
		var s string
		if json.Unmarshal(d, &s) == nil {
			return []byte(s)
		}
	}
	return data
}

// newUUID returns a random (version 4) UUID, create's default key.
func newUUID() (string, error) {
	var u [16]byte
	if _, err := io.ReadFull(rand.Reader, u[:]); err != nil {
		return "", fmt.Errorf("generating a key: %w", err)
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}
