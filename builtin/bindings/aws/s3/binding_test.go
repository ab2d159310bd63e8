package s3

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sdks3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/wapr-dev/wapr/builtin/backendtest"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/bindings"
)

// quiet makes the SDK stop validating response checksums, which gofakes3
// does not always send; otherwise the SDK logs a harmless WARN per call.
func quiet(o *sdks3.Options) {
	o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
}

// fakeS3 is an in-process gofakes3 server with one bucket, and a client
// of its own to look behind the binding's back.
type fakeS3 struct {
	URL    string
	Bucket string
	admin  *sdks3.Client
}

func newFakeS3(t *testing.T) *fakeS3 {
	t.Helper()
	ts := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	t.Cleanup(ts.Close)
	f := &fakeS3{URL: ts.URL, Bucket: "wapr-test"}
	f.admin = sdks3.New(sdks3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(ts.URL),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider("AK", "SK", ""),
		HTTPClient:   ts.Client(),
	}, quiet)
	if _, err := f.admin.CreateBucket(context.Background(), &sdks3.CreateBucketInput{Bucket: aws.String(f.Bucket)}); err != nil {
		t.Fatalf("CreateBucket: %v", err)
	}
	return f
}

// props returns the metadata of a binding on f's bucket plus extra.
func (f *fakeS3) props(extra map[string]string) map[string]string {
	p := map[string]string{
		"bucket": f.Bucket, "endpoint": f.URL, "forcePathStyle": "true",
		"accessKey": "AK", "secretKey": "SK",
	}
	for k, v := range extra {
		p[k] = v
	}
	return p
}

// object reads key straight from the fake, with its content type.
func (f *fakeS3) object(t *testing.T, key string) (string, string) {
	t.Helper()
	out, err := f.admin.GetObject(context.Background(), &sdks3.GetObjectInput{Bucket: aws.String(f.Bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("GetObject(%q): %v", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), aws.ToString(out.ContentType)
}

// newBinding returns an initialised binding closed at the end of the test.
func newBinding(t *testing.T, props map[string]string) *Binding {
	t.Helper()
	b := New()
	b.clientOptions = append(b.clientOptions, quiet)
	if err := b.Init(context.Background(), md(props)); err != nil {
		t.Fatalf("Init: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

func invoke(t *testing.T, b *Binding, op bindings.Operation, data string, md map[string]string) *bindings.InvokeResponse {
	t.Helper()
	resp, err := b.Invoke(context.Background(), &bindings.InvokeRequest{Operation: op, Data: []byte(data), Metadata: md})
	if err != nil {
		t.Fatalf("Invoke(%s, %q, %v): %v", op, data, md, err)
	}
	return resp
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestOperations(t *testing.T) {
	want := []bindings.Operation{"create", "get", "delete", "list", "presign"}
	b := New()
	got := b.Operations()
	if !slices.Equal(got, want) {
		t.Fatalf("Operations() = %v, want %v", got, want)
	}
	got[0] = "changed"
	if b.Operations()[0] != "create" {
		t.Error("Operations returned the binding's own slice")
	}
}

func TestCreateGetRoundTrip(t *testing.T) {
	f := newFakeS3(t)
	plain := newBinding(t, f.props(nil))
	decoding := newBinding(t, f.props(map[string]string{"decodeBase64": "true"}))
	encoding := newBinding(t, f.props(map[string]string{"encodeBase64": "true"}))

	tests := []struct {
		name      string
		b         *Binding
		data      string            // as Dapr hands it over: JSON
		createMD  map[string]string // without key, a UUID is generated
		getMD     map[string]string // key is added
		stored    string            // the object's content in the bucket
		got       string            // what get returns
		storedCT  string            // "" = not checked
		wantError error             // from create
	}{
		{name: "JSON string is stored unquoted", b: plain, data: `"hello world"`, createMD: map[string]string{"key": "greeting"}, stored: "hello world", got: "hello world"},
		{name: "JSON object is stored as text", b: plain, data: `{"a":1,"b":[true]}`, createMD: map[string]string{"key": "obj.json"}, stored: `{"a":1,"b":[true]}`, got: `{"a":1,"b":[true]}`},
		{name: "JSON null is an empty object", b: plain, data: `null`, createMD: map[string]string{"key": "empty"}, stored: "", got: ""},
		{name: "no key: a UUID is generated", b: plain, data: `"anonymous"`, stored: "anonymous", got: "anonymous"},
		{name: "key with slashes and spaces", b: plain, data: `"deep"`, createMD: map[string]string{"key": "a/b c/d.txt"}, stored: "deep", got: "deep"},
		{name: "content type", b: plain, data: `"<p>hi</p>"`, createMD: map[string]string{"key": "page.html", "Content-Type": "text/html"}, stored: "<p>hi</p>", got: "<p>hi</p>", storedCT: "text/html"},
		{name: "storage class and tags", b: plain, data: `"tagged"`, createMD: map[string]string{"key": "tagged", "storageClass": "STANDARD", "tags": "team=core, env = test"}, stored: "tagged", got: "tagged"},
		{name: "decodeBase64 per request", b: plain, data: `"aGVsbG8="`, createMD: map[string]string{"key": "b64req", "decodeBase64": "true"}, stored: "hello", got: "hello"},
		{name: "decodeBase64 per component", b: decoding, data: `"aGVsbG8="`, createMD: map[string]string{"key": "b64comp"}, stored: "hello", got: "hello"},
		{name: "request turns component decodeBase64 off", b: decoding, data: `"aGVsbG8="`, createMD: map[string]string{"key": "b64off", "decodeBase64": "false"}, stored: "aGVsbG8=", got: "aGVsbG8="},
		{name: "encodeBase64 per request", b: plain, data: `"hello"`, createMD: map[string]string{"key": "enc-req"}, getMD: map[string]string{"encodeBase64": "true"}, stored: "hello", got: "aGVsbG8="},
		{name: "encodeBase64 per component", b: encoding, data: `"hello"`, createMD: map[string]string{"key": "enc-comp"}, stored: "hello", got: "aGVsbG8="},
		{name: "binary through base64 both ways", b: plain, data: strconv.Quote(base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 0xff})), createMD: map[string]string{"key": "bin", "decodeBase64": "true"}, getMD: map[string]string{"encodeBase64": "true"}, stored: "\x00\x01\x02\xff", got: "AAEC/w=="},
		{name: "invalid base64", b: plain, data: `"not base64!"`, createMD: map[string]string{"key": "bad", "decodeBase64": "true"}, wantError: component.ErrInvalidArgument},
		{name: "decodeBase64 is strict", b: plain, data: `"x"`, createMD: map[string]string{"key": "bad", "decodeBase64": "yes"}, wantError: component.ErrInvalidArgument},
		{name: "unknown storage class", b: plain, data: `"x"`, createMD: map[string]string{"key": "bad", "storageClass": "COLD"}, wantError: component.ErrInvalidArgument},
		{name: "malformed tags", b: plain, data: `"x"`, createMD: map[string]string{"key": "bad", "tags": "team"}, wantError: component.ErrInvalidArgument},
		{name: "filePath is refused", b: plain, data: `"x"`, createMD: map[string]string{"key": "bad", "filePath": "/etc/passwd"}, wantError: component.ErrNotSupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := tt.b.Invoke(context.Background(), &bindings.InvokeRequest{Operation: "create", Data: []byte(tt.data), Metadata: tt.createMD})
			if tt.wantError != nil {
				if !errors.Is(err, tt.wantError) {
					t.Fatalf("create: err = %v, want %v", err, tt.wantError)
				}
				return
			}
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			key := resp.Metadata["key"]
			if want := tt.createMD["key"]; want != "" && key != want {
				t.Errorf("response metadata key = %q, want %q", key, want)
			}
			if tt.createMD["key"] == "" && !uuidRE.MatchString(key) {
				t.Errorf("generated key %q is not a UUID", key)
			}
			var cr struct {
				Location  string  `json:"location"`
				VersionID *string `json:"versionID"`
			}
			if err := json.Unmarshal(resp.Data, &cr); err != nil {
				t.Fatalf("create response %s: %v", resp.Data, err)
			}
			if !strings.HasPrefix(cr.Location, f.URL+"/"+f.Bucket+"/") {
				t.Errorf("location = %q, want it under %s/%s/", cr.Location, f.URL, f.Bucket)
			}
			if !strings.Contains(string(resp.Data), `"versionID":null`) || strings.Contains(string(resp.Data), "presignURL") {
				t.Errorf("create response = %s, want versionID null and no presignURL", resp.Data)
			}

			stored, ct := f.object(t, key)
			if stored != tt.stored {
				t.Errorf("stored %q, want %q", stored, tt.stored)
			}
			if tt.storedCT != "" && ct != tt.storedCT {
				t.Errorf("stored content type %q, want %q", ct, tt.storedCT)
			}

			getMD := map[string]string{"key": key}
			for k, v := range tt.getMD {
				getMD[k] = v
			}
			got := invoke(t, tt.b, "get", "", getMD)
			if string(got.Data) != tt.got {
				t.Errorf("get = %q, want %q", got.Data, tt.got)
			}
		})
	}
}

func TestGetErrors(t *testing.T) {
	f := newFakeS3(t)
	b := newBinding(t, f.props(nil))
	tests := []struct {
		name    string
		md      map[string]string
		want    error
		message string
	}{
		{name: "missing object", md: map[string]string{"key": "nope"}, want: component.ErrNotFound, message: "object not found"},
		{name: "no key", md: nil, want: component.ErrInvalidArgument, message: "key is required"},
		{name: "bad encodeBase64", md: map[string]string{"key": "k", "encodeBase64": "sure"}, want: component.ErrInvalidArgument, message: "encodeBase64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := b.Invoke(context.Background(), &bindings.InvokeRequest{Operation: "get", Metadata: tt.md})
			if !errors.Is(err, tt.want) || resp != nil {
				t.Fatalf("get: resp = %v, err = %v, want %v", resp, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.message) || !strings.Contains(err.Error(), `"mys3"`) {
				t.Errorf("error %q should name the component and say %q", err, tt.message)
			}
		})
	}
}

func TestDelete(t *testing.T) {
	f := newFakeS3(t)
	b := newBinding(t, f.props(nil))
	invoke(t, b, "create", `"doomed"`, map[string]string{"key": "doomed"})

	tests := []struct {
		name string
		md   map[string]string
		want error
	}{
		{name: "existing object", md: map[string]string{"key": "doomed"}},
		{name: "missing object is not an error", md: map[string]string{"key": "never-was"}},
		{name: "no key", want: component.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := b.Invoke(context.Background(), &bindings.InvokeRequest{Operation: "delete", Metadata: tt.md})
			if !errors.Is(err, tt.want) {
				t.Fatalf("delete: err = %v, want %v", err, tt.want)
			}
			if resp != nil {
				t.Errorf("delete returned %+v, want a nil response (no content)", resp)
			}
		})
	}
	_, err := b.Invoke(context.Background(), &bindings.InvokeRequest{Operation: "get", Metadata: map[string]string{"key": "doomed"}})
	if !errors.Is(err, component.ErrNotFound) {
		t.Errorf("get after delete: err = %v, want ErrNotFound", err)
	}
}

// listOutput is the part of Dapr's list answer the tests look at.
type listOutput struct {
	Contents []struct {
		Key          string
		Size         *int64
		ETag         *string
		LastModified *time.Time
	}
	CommonPrefixes []struct{ Prefix string }
	IsTruncated    *bool
	MaxKeys        *int32
	Name           *string
	Prefix         *string
	NextMarker     *string
}

func TestList(t *testing.T) {
	f := newFakeS3(t)
	b := newBinding(t, f.props(nil))
	for _, k := range []string{"a/1", "a/2", "a/3", "b/1", "top"} {
		invoke(t, b, "create", strconv.Quote("content of "+k), map[string]string{"key": k})
	}
	tests := []struct {
		name      string
		data      string
		keys      []string
		prefixes  []string
		truncated bool
	}{
		{name: "no data lists everything", data: "", keys: []string{"a/1", "a/2", "a/3", "b/1", "top"}},
		{name: "JSON null lists everything", data: "null", keys: []string{"a/1", "a/2", "a/3", "b/1", "top"}},
		{name: "prefix", data: `{"prefix":"a/"}`, keys: []string{"a/1", "a/2", "a/3"}},
		{name: "maxResults truncates", data: `{"prefix":"a/","maxResults":2}`, keys: []string{"a/1", "a/2"}, truncated: true},
		{name: "marker continues", data: `{"prefix":"a/","marker":"a/2"}`, keys: []string{"a/3"}},
		{name: "delimiter groups", data: `{"delimiter":"/"}`, keys: []string{"top"}, prefixes: []string{"a/", "b/"}},
		{name: "prefix matching nothing", data: `{"prefix":"zzz"}`, keys: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := invoke(t, b, "list", tt.data, nil)
			var out listOutput
			if err := json.Unmarshal(resp.Data, &out); err != nil {
				t.Fatalf("list answer %s: %v", resp.Data, err)
			}
			var keys, prefixes []string
			for _, c := range out.Contents {
				keys = append(keys, c.Key)
				if c.Size == nil || *c.Size == 0 || c.ETag == nil || c.LastModified == nil {
					t.Errorf("object %q lacks Size, ETag or LastModified: %s", c.Key, resp.Data)
				}
			}
			for _, p := range out.CommonPrefixes {
				prefixes = append(prefixes, p.Prefix)
			}
			if !slices.Equal(keys, tt.keys) || !slices.Equal(prefixes, tt.prefixes) {
				t.Errorf("keys %v prefixes %v, want %v %v (%s)", keys, prefixes, tt.keys, tt.prefixes, resp.Data)
			}
			if out.IsTruncated == nil || *out.IsTruncated != tt.truncated {
				t.Errorf("IsTruncated = %v, want %v", out.IsTruncated, tt.truncated)
			}
			if aws.ToString(out.Name) != f.Bucket {
				t.Errorf("Name = %v, want %q", out.Name, f.Bucket)
			}
		})
	}

	t.Run("malformed data", func(t *testing.T) {
		_, err := b.Invoke(context.Background(), &bindings.InvokeRequest{Operation: "list", Data: []byte(`{"maxResults":"many"}`)})
		if !errors.Is(err, component.ErrInvalidArgument) {
			t.Errorf("err = %v, want ErrInvalidArgument", err)
		}
	})
}

func TestPresign(t *testing.T) {
	f := newFakeS3(t)
	b := newBinding(t, f.props(nil))
	invoke(t, b, "create", `"presigned content"`, map[string]string{"key": "shared/file.txt"})

	fetch := func(t *testing.T, u string) string {
		t.Helper()
		if !strings.Contains(u, "X-Amz-Signature=") || !strings.Contains(u, "X-Amz-Expires=900") {
			t.Errorf("URL %q is not presigned for 15 minutes", u)
		}
		resp, err := http.Get(u) // a plain GET, no AWS client involved
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s %s", u, resp.Status, body)
		}
		return string(body)
	}

	t.Run("presign operation", func(t *testing.T) {
		resp := invoke(t, b, "presign", "", map[string]string{"key": "shared/file.txt", "presignTTL": "15m"})
		var pr struct {
			PresignURL string `json:"presignURL"`
		}
		if err := json.Unmarshal(resp.Data, &pr); err != nil {
			t.Fatalf("presign answer %s: %v", resp.Data, err)
		}
		if got := fetch(t, pr.PresignURL); got != "presigned content" {
			t.Errorf("GET presigned URL = %q", got)
		}
	})

	t.Run("create with presignTTL", func(t *testing.T) {
		resp := invoke(t, b, "create", `"fresh"`, map[string]string{"key": "fresh.txt", "presignTTL": "15m"})
		var cr struct {
			PresignURL string `json:"presignURL"`
		}
		if err := json.Unmarshal(resp.Data, &cr); err != nil {
			t.Fatalf("create answer %s: %v", resp.Data, err)
		}
		if got := fetch(t, cr.PresignURL); got != "fresh" {
			t.Errorf("GET presigned URL = %q", got)
		}
	})

	errorCases := []struct {
		name string
		op   bindings.Operation
		md   map[string]string
	}{
		{name: "presign without key", op: "presign", md: map[string]string{"presignTTL": "1m"}},
		{name: "presign without presignTTL", op: "presign", md: map[string]string{"key": "k"}},
		{name: "presignTTL not a duration", op: "presign", md: map[string]string{"key": "k", "presignTTL": "soon"}},
		{name: "presignTTL too long", op: "presign", md: map[string]string{"key": "k", "presignTTL": "169h"}},
		{name: "presignTTL negative", op: "presign", md: map[string]string{"key": "k", "presignTTL": "-1m"}},
		{name: "create with a bad presignTTL stores nothing", op: "create", md: map[string]string{"key": "not-stored", "presignTTL": "soon"}},
	}
	for _, tt := range errorCases {
		t.Run(tt.name, func(t *testing.T) {
			_, err := b.Invoke(context.Background(), &bindings.InvokeRequest{Operation: tt.op, Data: []byte(`"x"`), Metadata: tt.md})
			if !errors.Is(err, component.ErrInvalidArgument) {
				t.Errorf("err = %v, want ErrInvalidArgument", err)
			}
		})
	}
	if _, err := f.admin.HeadObject(context.Background(), &sdks3.HeadObjectInput{Bucket: aws.String(f.Bucket), Key: aws.String("not-stored")}); err == nil {
		t.Error("a create with a bad presignTTL stored the object")
	}
}

func TestUnknownOperation(t *testing.T) {
	f := newFakeS3(t)
	b := newBinding(t, f.props(nil))
	for _, op := range []bindings.Operation{"bulkGet", "CREATE", "", "head"} {
		t.Run(string(op), func(t *testing.T) {
			_, err := b.Invoke(context.Background(), &bindings.InvokeRequest{Operation: op, Metadata: map[string]string{"key": "k"}})
			if !errors.Is(err, component.ErrNotSupported) {
				t.Fatalf("err = %v, want ErrNotSupported", err)
			}
			if !strings.Contains(err.Error(), "create, get, delete, list, presign") {
				t.Errorf("error %q should list the supported operations", err)
			}
		})
	}
}

func TestInitErrors(t *testing.T) {
	f := newFakeS3(t)
	closedPort := fmt.Sprintf("http://127.0.0.1:%d", backendtest.FreePort(t))
	tests := []struct {
		name     string
		props    map[string]string
		want     error
		mentions []string
	}{
		{
			name:     "missing bucket",
			props:    f.props(map[string]string{"bucket": "no-such-bucket"}),
			want:     component.ErrNotFound,
			mentions: []string{`"mys3"`, `"no-such-bucket"`, "does not exist"},
		},
		{
			name:     "unreachable endpoint",
			props:    f.props(map[string]string{"endpoint": closedPort}),
			want:     component.ErrUnavailable,
			mentions: []string{`"mys3"`, closedPort, `"wapr-test"`},
		},
		{
			name:     "configuration problems",
			props:    map[string]string{"forcePathStyle": "yes"},
			want:     component.ErrInvalidArgument,
			mentions: []string{`"mys3"`, "bucket", "forcePathStyle"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New()
			b.clientOptions = append(b.clientOptions, quiet, func(o *sdks3.Options) { o.RetryMaxAttempts = 1 })
			err := b.Init(context.Background(), md(tt.props))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Init: err = %v, want %v", err, tt.want)
			}
			for _, m := range tt.mentions {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %s", err, m)
				}
			}
			if err := b.Close(context.Background()); err != nil {
				t.Errorf("Close after a failed Init: %v", err)
			}
		})
	}
}

// TestRegion checks where the region comes from when the metadata names
// none. It changes the environment, so it does not run in parallel.
func TestRegion(t *testing.T) {
	f := newFakeS3(t)
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_DEFAULT_REGION", "")

	t.Run("required without endpoint", func(t *testing.T) {
		t.Setenv("AWS_REGION", "")
		err := New().Init(context.Background(), md(map[string]string{"bucket": "b"}))
		var ce *component.ConfigError
		if !errors.As(err, &ce) || ce.Problems[0].Field != "region" {
			t.Fatalf("Init: err = %v, want a config error about region", err)
		}
	})
	t.Run("us-east-1 with an endpoint", func(t *testing.T) {
		t.Setenv("AWS_REGION", "")
		b := newBinding(t, f.props(nil))
		resp := invoke(t, b, "presign", "", map[string]string{"key": "k", "presignTTL": "1m"})
		if !strings.Contains(string(resp.Data), "%2Fus-east-1%2Fs3%2Faws4_request") {
			t.Errorf("presigned URL not scoped to us-east-1: %s", resp.Data)
		}
	})
	t.Run("the environment's", func(t *testing.T) {
		t.Setenv("AWS_REGION", "eu-central-1")
		b := newBinding(t, f.props(nil))
		resp := invoke(t, b, "presign", "", map[string]string{"key": "k", "presignTTL": "1m"})
		if !strings.Contains(string(resp.Data), "%2Feu-central-1%2Fs3%2Faws4_request") {
			t.Errorf("presigned URL not scoped to eu-central-1: %s", resp.Data)
		}
	})
}

func TestLifecycle(t *testing.T) {
	f := newFakeS3(t)

	t.Run("Invoke before Init", func(t *testing.T) {
		if _, err := New().Invoke(context.Background(), &bindings.InvokeRequest{Operation: "list"}); err == nil {
			t.Error("want an error")
		}
	})
	t.Run("Init twice", func(t *testing.T) {
		b := newBinding(t, f.props(nil))
		if err := b.Init(context.Background(), md(f.props(nil))); err == nil {
			t.Error("second Init succeeded")
		}
	})
	t.Run("nil request", func(t *testing.T) {
		b := newBinding(t, f.props(nil))
		if _, err := b.Invoke(context.Background(), nil); !errors.Is(err, component.ErrInvalidArgument) {
			t.Errorf("err = %v, want ErrInvalidArgument", err)
		}
	})
	t.Run("after Close", func(t *testing.T) {
		b := New()
		b.clientOptions = append(b.clientOptions, quiet)
		if err := b.Init(context.Background(), md(f.props(nil))); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := b.Close(context.Background()); err != nil {
				t.Fatalf("Close: %v", err)
			}
		}
		if _, err := b.Invoke(context.Background(), &bindings.InvokeRequest{Operation: "list"}); !errors.Is(err, component.ErrClosed) {
			t.Errorf("Invoke after Close: err = %v, want ErrClosed", err)
		}
		if err := b.Init(context.Background(), md(f.props(nil))); !errors.Is(err, component.ErrClosed) {
			t.Errorf("Init after Close: err = %v, want ErrClosed", err)
		}
	})
	t.Run("Close aborts a stuck call at its deadline", func(t *testing.T) {
		// A server that accepts the request and never answers until the
		// test ends.
		release := make(chan struct{})
		entered := make(chan struct{}, 1)
		stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodHead { // HeadBucket at Init
				return
			}
			entered <- struct{}{}
			<-release
		}))
		defer stuck.Close()
		defer close(release)
		b := New()
		b.clientOptions = append(b.clientOptions, quiet, func(o *sdks3.Options) { o.RetryMaxAttempts = 1 })
		if err := b.Init(context.Background(), md(f.props(map[string]string{"endpoint": stuck.URL}))); err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() {
			_, err := b.Invoke(context.Background(), &bindings.InvokeRequest{Operation: "get", Metadata: map[string]string{"key": "k"}})
			errc <- err
		}()
		<-entered
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // the deadline has passed already
		if err := b.Close(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Close: err = %v, want context.Canceled", err)
		}
		if err := <-errc; !errors.Is(err, component.ErrClosed) {
			t.Errorf("aborted Invoke: err = %v, want ErrClosed", err)
		}
	})
}

func TestConcurrentInvoke(t *testing.T) {
	f := newFakeS3(t)
	b := newBinding(t, f.props(nil))
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 16 {
		wg.Go(func() {
			key := fmt.Sprintf("c/%d", i)
			want := fmt.Sprintf("value %d", i)
			ctx := context.Background()
			if _, err := b.Invoke(ctx, &bindings.InvokeRequest{Operation: "create", Data: []byte(strconv.Quote(want)), Metadata: map[string]string{"key": key}}); err != nil {
				errs <- err
				return
			}
			resp, err := b.Invoke(ctx, &bindings.InvokeRequest{Operation: "get", Metadata: map[string]string{"key": key}})
			if err != nil {
				errs <- err
				return
			}
			if string(resp.Data) != want {
				errs <- fmt.Errorf("get %s = %q, want %q", key, resp.Data, want)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	resp := invoke(t, b, "list", `{"prefix":"c/"}`, nil)
	var out listOutput
	if err := json.Unmarshal(resp.Data, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Contents) != 16 {
		t.Errorf("listed %d objects, want 16", len(out.Contents))
	}
}

// TestInitAccessDenied covers credentials that may use objects but not
// HeadBucket (s3:ListBucket): Init warns and goes on, since Dapr checks
// nothing at init and the bucket may well be usable.
func TestInitAccessDenied(t *testing.T) {
	denying := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
	}))
	defer denying.Close()

	// slog.Default is process-wide; no test in this package runs in
	// parallel, so swapping it here is safe.
	var logs strings.Builder
	var mu sync.Mutex
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), nil)))
	defer slog.SetDefault(old)

	b := New()
	b.clientOptions = append(b.clientOptions, quiet, func(o *sdks3.Options) { o.RetryMaxAttempts = 1 })
	if err := b.Init(context.Background(), md(map[string]string{
		"bucket": "locked", "endpoint": denying.URL, "forcePathStyle": "true", "accessKey": "AK", "secretKey": "SK",
	})); err != nil {
		t.Fatalf("Init: %v", err)
	}
	defer b.Close(context.Background())
	mu.Lock()
	got := logs.String()
	mu.Unlock()
	if !strings.Contains(got, "level=WARN") || !strings.Contains(got, "bucket=locked") || !strings.Contains(got, "component=mys3") {
		t.Errorf("want a warning naming the component and bucket, logged:\n%s", got)
	}
	_, err := b.Invoke(context.Background(), &bindings.InvokeRequest{Operation: "get", Metadata: map[string]string{"key": "k"}})
	if err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("get: err = %v, want the 403", err)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
