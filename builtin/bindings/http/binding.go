// Package httpbinding is the native driver for Dapr's bindings.http output
// binding: each invocation becomes one HTTP request to a configured URL.
//
// # Metadata
//
// Keys are matched case-insensitively, as Dapr does.
//
//	url                  required; absolute http:// or https:// base URL
//	responseTimeout      deadline per call, a Go duration ("10s") or whole
//	                     seconds ("10"); default 30s (Dapr: none). A shorter
//	                     deadline on the caller's context wins.
//	maxResponseBodySize  largest response body accepted, in bytes, with an
//	                     optional Ki/Mi/Gi/Ti (1024-based) or k/M/G/T
//	                     (1000-based) suffix; default 100Mi; <= 0 means no
//	                     limit. A larger body is an error, not truncated.
//	errorIfNot2XX        a non-2xx status is an error; default true
//	securityToken        a secret sent on every request in the header named
//	securityTokenHeader  by securityTokenHeader; set both or neither
//	mtlsRootCA           CA certificate(s) trusted for the server: PEM content
//	                     or a file path; default the system roots
//	mtlsClientCert       client certificate and key for mutual TLS: PEM
//	mtlsClientKey        content or file paths; set both or neither
//	mtlsRenegotiation    RenegotiateNever (default), RenegotiateOnceAsClient
//	                     or RenegotiateFreelyAsClient
//
// # Operations
//
// get, head, post, put, patch, delete, options and trace send the HTTP method
// of that name; create is post (Dapr's generic operation). Operation names are
// matched case-insensitively. Any other operation is refused with an error
// wrapping component.ErrNotSupported. Data is sent as the request body for
// post, put, patch and create only, as Dapr does (Dapr hands a missing data
// field over as the JSON text null).
//
// # Request metadata
//
//	path            appended to url with exactly one slash between them; may
//	                carry a query string, merged with url's own
//	errorIfNot2XX   overrides the component setting for this call
//	traceparent, tracestate, baggage
//	                sent as the W3C trace headers of the same name
//
// Every other key that starts with an upper-case ASCII letter (Content-Type,
// X-Request-Id, …) is sent as a request header, as in Dapr; other lower-case
// keys are not, so metadata the host or app adds for other purposes never
// leaks to the server. Content-Type (when a body is sent) and Accept default
// to "application/json; charset=utf-8".
//
// Redirects are followed (at most 10) and the HTTP_PROXY, HTTPS_PROXY and
// NO_PROXY environment variables are honoured, as with Go's default client.
//
// # Response
//
// The response body is the binding's data and its Content-Type the data's
// content type. Response metadata holds statusCode ("200"), status
// ("200 OK") and every response header under its canonical name, several
// values joined with ", ". With errorIfNot2XX, a non-2xx status returns the
// response (so its metadata still reaches the app) together with a
// *StatusError.
//
// # Errors
//
// A target that cannot be reached (refused connection, DNS failure, TLS
// handshake failure, reset) is reported with an error wrapping
// component.ErrUnavailable; a deadline or cancellation with one wrapping the
// context's error; a body over maxResponseBodySize with one wrapping
// ErrResponseTooLarge; bad request metadata with one wrapping
// component.ErrInvalidArgument. Error messages name the method and URL, with
// any password in the URL redacted.
package httpbinding

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/bindings"
)

var _ bindings.Output = (*Binding)(nil)

// ErrResponseTooLarge is wrapped by the error Invoke returns when a response
// body exceeds maxResponseBodySize.
var ErrResponseTooLarge = errors.New("response body exceeds maxResponseBodySize")

// StatusError is the error Invoke returns, together with the response, when
// the server answers outside 2xx and errorIfNot2XX is on.
type StatusError struct {
	StatusCode int    // e.g. 404
	Method     string // e.g. "GET"
	URL        string // the request URL, any password redacted
	// Body is the start of the response body (at most 1 KiB, control
	// characters replaced by spaces), for the error message.
	Body string
}

// Error names the method, URL and status code, then the body excerpt.
func (e *StatusError) Error() string {
	var b strings.Builder
	b.WriteString("bindings.http: ")
	b.WriteString(e.Method)
	b.WriteByte(' ')
	b.WriteString(e.URL)
	b.WriteString(": received status code ")
	b.WriteString(strconv.Itoa(e.StatusCode))
	if e.Body != "" {
		b.WriteString(": ")
		b.WriteString(e.Body)
	}
	return b.String()
}

// maxErrorBody bounds how much of a non-2xx body goes into a StatusError.
const maxErrorBody = 1 << 10

// Transport tuning. One binding talks to one host (plus redirects), so keep
// plenty of idle connections to it rather than Go's default of two.
const (
	dialTimeout            = 15 * time.Second
	tlsHandshakeTimeout    = 15 * time.Second
	idleConnTimeout        = 90 * time.Second
	maxIdleConns           = 100
	maxIdleConnsPerHost    = 64
	maxResponseHeaderBytes = 1 << 20
)

// Operations offered besides Dapr's generic create, get and delete.
const (
	opHead    bindings.Operation = "head"
	opPost    bindings.Operation = "post"
	opPut     bindings.Operation = "put"
	opPatch   bindings.Operation = "patch"
	opOptions bindings.Operation = "options"
	opTrace   bindings.Operation = "trace"
)

// operations is the list Operations returns a copy of; methods maps each to
// its HTTP method.
var (
	operations = []bindings.Operation{
		bindings.OperationCreate, bindings.OperationGet, opHead, opPost, opPut,
		opPatch, bindings.OperationDelete, opOptions, opTrace,
	}
	methods = map[bindings.Operation]string{
		bindings.OperationCreate: http.MethodPost,
		bindings.OperationGet:    http.MethodGet,
		opHead:                   http.MethodHead,
		opPost:                   http.MethodPost,
		opPut:                    http.MethodPut,
		opPatch:                  http.MethodPatch,
		bindings.OperationDelete: http.MethodDelete,
		opOptions:                http.MethodOptions,
		opTrace:                  http.MethodTrace,
	}
)

// Request metadata keys the binding reads itself; traceHeaders are sent as
// headers although they are lower-case.
const (
	mdPath          = "path"
	mdErrorIfNot2XX = "errorIfNot2XX"
)

var traceHeaders = []string{"traceparent", "tracestate", "baggage"}

const jsonContentType = "application/json; charset=utf-8"

// Binding is the bindings.http output binding. Create it with New, then Init.
//
// A Binding is safe for concurrent use. All calls share one *http.Client and
// its pool of keep-alive connections.
type Binding struct {
	mu      sync.Mutex
	cfg     config
	client  *http.Client    // nil until Init succeeds
	tr      *http.Transport // client's transport, for CloseIdleConnections
	closed  bool
	calls   map[*call]struct{} // in-flight Invoke calls
	drained chan struct{}      // closed when the last call ends after Close began
}

// call is one in-flight Invoke, so Close can abort it.
type call struct {
	cancel context.CancelCauseFunc
}

// New returns a Binding that does nothing until Init.
func New() *Binding { return &Binding{} }

// Init parses the metadata (reporting every problem at once in a
// *component.ConfigError) and builds the HTTP client. It does not contact
// the server. It reads the mTLS files the metadata names, if any.
func (b *Binding) Init(_ context.Context, md component.Metadata) error {
	cfg, err := parseConfig(md)
	if err != nil {
		return err
	}
	tr := newTransport(cfg)
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return fmt.Errorf("bindings.http: Init: %w", component.ErrClosed)
	case b.client != nil:
		return errors.New("bindings.http: Init called twice")
	}
	b.cfg = cfg
	b.tr = tr
	b.client = &http.Client{Transport: tr} // deadlines come from the request context
	return nil
}

func newTransport(cfg config) *http.Transport {
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                  http.ProxyFromEnvironment,
		DialContext:            dialer.DialContext,
		TLSClientConfig:        cfg.tls,
		TLSHandshakeTimeout:    tlsHandshakeTimeout,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           maxIdleConns,
		MaxIdleConnsPerHost:    maxIdleConnsPerHost,
		IdleConnTimeout:        idleConnTimeout,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
	}
}

// Operations lists the operations Invoke accepts. The caller owns the slice.
func (b *Binding) Operations() []bindings.Operation {
	return append([]bindings.Operation(nil), operations...)
}

// Invoke sends one HTTP request and returns the response. See the package
// documentation for how the request is built and the response reported.
//
// On a non-2xx status with errorIfNot2XX, and on a body over
// maxResponseBodySize, it returns both the response (data omitted when too
// large) and an error. The returned response is owned by the caller.
func (b *Binding) Invoke(ctx context.Context, req *bindings.InvokeRequest) (*bindings.InvokeResponse, error) {
	if req == nil {
		return nil, fmt.Errorf("bindings.http: nil request: %w", component.ErrInvalidArgument)
	}
	cfg, client, ctx, end, err := b.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer end()

	method, ok := methods[bindings.Operation(strings.ToLower(string(req.Operation)))]
	if !ok {
		return nil, fmt.Errorf("bindings.http: operation %q: %w; supported: %s",
			req.Operation, component.ErrNotSupported, supportedList())
	}

	target, err := cfg.target(req.Metadata[mdPath])
	if err != nil {
		return nil, err
	}
	errorIfNot2XX := cfg.errorIfNot2XX
	if v := req.Metadata[mdErrorIfNot2XX]; v != "" {
		if errorIfNot2XX, err = strconv.ParseBool(v); err != nil {
			return nil, fmt.Errorf("bindings.http: request metadata %s must be true or false, got %q: %w",
				mdErrorIfNot2XX, v, component.ErrInvalidArgument)
		}
	}

	ctx, cancel := context.WithTimeoutCause(ctx, cfg.responseTimeout,
		fmt.Errorf("responseTimeout %s exceeded: %w", cfg.responseTimeout, context.DeadlineExceeded))
	defer cancel()

	var body io.Reader
	hasBody := method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch
	if hasBody {
		body = http.NoBody
		if len(req.Data) > 0 {
			body = bytes.NewReader(req.Data)
		}
	}
	hreq, err := http.NewRequestWithContext(ctx, method, target.String(), body)
	if err != nil {
		return nil, fmt.Errorf("bindings.http: %s %s: %w: %w", method, target.Redacted(), component.ErrInvalidArgument, err)
	}
	if err := setHeaders(hreq.Header, cfg, req.Metadata, hasBody); err != nil {
		return nil, fmt.Errorf("bindings.http: %s %s: %w", method, target.Redacted(), err)
	}

	resp, err := client.Do(hreq)
	if err != nil {
		return nil, transportError(ctx, method, target, "", err)
	}
	defer resp.Body.Close() // without draining: an unread body closes the connection

	out := &bindings.InvokeResponse{
		ContentType: resp.Header.Get("Content-Type"),
		Metadata:    responseMetadata(resp),
	}
	if resp.Body != http.NoBody && method != http.MethodHead {
		out.Data, err = readBody(resp.Body, resp.ContentLength, cfg.maxResponseBodySize)
		if errors.Is(err, ErrResponseTooLarge) {
			return out, fmt.Errorf("bindings.http: %s %s: %w (limit %d bytes)", method, target.Redacted(), err, cfg.maxResponseBodySize)
		}
		if err != nil {
			return nil, transportError(ctx, method, target, "reading response body: ", err)
		}
	}

	if errorIfNot2XX && (resp.StatusCode < 200 || resp.StatusCode > 299) {
		return out, &StatusError{
			StatusCode: resp.StatusCode,
			Method:     method,
			URL:        target.Redacted(),
			Body:       excerpt(out.Data),
		}
	}
	return out, nil
}

// begin registers an Invoke call. It returns the configuration and client
// to use and a context Close can cancel; end must be called when the call
// is over.
func (b *Binding) begin(ctx context.Context) (config, *http.Client, context.Context, func(), error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return config{}, nil, nil, nil, fmt.Errorf("bindings.http: %w", component.ErrClosed)
	}
	if b.client == nil {
		return config{}, nil, nil, nil, errors.New("bindings.http: Invoke before a successful Init")
	}
	ctx, cancel := context.WithCancelCause(ctx)
	c := &call{cancel: cancel}
	if b.calls == nil {
		b.calls = map[*call]struct{}{}
	}
	b.calls[c] = struct{}{}
	tr := b.tr
	end := func() {
		cancel(nil)
		b.mu.Lock()
		delete(b.calls, c)
		closed := b.closed
		if b.drained != nil && len(b.calls) == 0 {
			close(b.drained)
			b.drained = nil
		}
		b.mu.Unlock()
		if closed {
			// The call may have returned its connection to the idle pool
			// after Close emptied it.
			tr.CloseIdleConnections()
		}
	}
	return b.cfg, b.client, ctx, end, nil
}

// Close stops new calls (they fail with component.ErrClosed), waits for the
// calls in flight to finish, then closes the idle connections. When ctx ends
// first, it aborts the remaining calls (they fail with an error wrapping
// component.ErrClosed) and returns an error wrapping ctx's error. Close may
// be called more than once, also after a failed Init; later calls return nil
// at once.
func (b *Binding) Close(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	drained := make(chan struct{})
	if len(b.calls) == 0 {
		close(drained)
	} else {
		b.drained = drained
	}
	tr := b.tr
	b.mu.Unlock()

	var err error
	select {
	case <-drained:
	default:
		select {
		case <-drained:
		case <-ctx.Done():
			b.mu.Lock()
			n := len(b.calls)
			for c := range b.calls {
				c.cancel(component.ErrClosed)
			}
			b.mu.Unlock()
			if n > 0 {
				err = fmt.Errorf("bindings.http: close: aborted %d in-flight calls: %w", n, context.Cause(ctx))
			}
		}
	}
	if tr != nil {
		// Calls that end later close the connections they return.
		tr.CloseIdleConnections()
	}
	return err
}

// target returns the request URL for the request metadata path.
func (c config) target(path string) (*url.URL, error) {
	if path == "" {
		u := *c.url
		return &u, nil
	}
	rawPath, rawQuery, _ := strings.Cut(path, "?")
	u, err := url.Parse(c.base + "/" + strings.TrimLeft(rawPath, "/"))
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("bindings.http: request metadata %s %q: %w: %w", mdPath, path, component.ErrInvalidArgument, err)
	}
	u.Fragment, u.RawFragment = "", ""
	q := c.url.RawQuery
	if rawQuery != "" {
		if q != "" {
			q += "&"
		}
		q += rawQuery
	}
	u.RawQuery = q
	return u, nil
}

// setHeaders fills h from the defaults, the security token and the request
// metadata. Metadata wins over the token, as in Dapr.
func setHeaders(h http.Header, cfg config, md map[string]string, hasBody bool) error {
	h.Set("Accept", jsonContentType)
	if hasBody {
		h.Set("Content-Type", jsonContentType)
	}
	if cfg.securityTokenHeader != "" {
		h.Set(cfg.securityTokenHeader, cfg.securityToken)
	}
	for k, v := range md {
		if k == "" || k[0] < 'A' || k[0] > 'Z' {
			continue
		}
		if err := setHeader(h, k, v); err != nil {
			return err
		}
	}
	for _, k := range traceHeaders {
		if v := md[k]; v != "" {
			if err := setHeader(h, k, v); err != nil {
				return err
			}
		}
	}
	return nil
}

func setHeader(h http.Header, k, v string) error {
	if !validHeaderName(k) {
		return fmt.Errorf("request metadata key %q is not a valid HTTP header name: %w", k, component.ErrInvalidArgument)
	}
	if !validHeaderValue(v) {
		return fmt.Errorf("request metadata %q holds control characters, not allowed in an HTTP header: %w", k, component.ErrInvalidArgument)
	}
	h.Set(k, v)
	return nil
}

// responseMetadata returns statusCode, status and every response header.
func responseMetadata(resp *http.Response) map[string]string {
	md := make(map[string]string, len(resp.Header)+2)
	for k, vs := range resp.Header {
		md[k] = strings.Join(vs, ", ")
	}
	md["statusCode"] = strconv.Itoa(resp.StatusCode)
	md["status"] = resp.Status
	return md
}

// readBody reads r to the end without ever holding more than limit+1 bytes;
// more than limit bytes is ErrResponseTooLarge. A Content-Length over limit
// is refused before reading anything. limit <= 0 means no limit.
func readBody(r io.Reader, contentLength, limit int64) ([]byte, error) {
	if limit > 0 && contentLength > limit {
		return nil, ErrResponseTooLarge
	}
	const minRead = 512
	const maxInitial = 1 << 20 // do not trust a huge Content-Length up front
	size := int64(minRead)
	if contentLength >= 0 {
		size = min(contentLength+1, maxInitial) // +1 so EOF is seen without growing
	}
	if limit > 0 {
		size = min(size, limit+1)
	}
	buf := make([]byte, 0, max(size, 1))
	for {
		if len(buf) == cap(buf) {
			newCap := int64(cap(buf)) * 2
			if limit > 0 {
				newCap = min(newCap, limit+1)
			}
			buf = append(make([]byte, 0, newCap), buf...)
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if limit > 0 && int64(len(buf)) > limit {
			return nil, ErrResponseTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// transportError classifies an error from sending the request or reading the
// response: a done context is reported with its cause (a deadline, the
// caller's cancellation, or component.ErrClosed when Close aborted the call);
// anything else means the target could not be reached.
func transportError(ctx context.Context, method string, target *url.URL, what string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // its message repeats the URL, unredacted
	}
	if ctx.Err() != nil {
		return fmt.Errorf("bindings.http: %s %s: %s%w", method, target.Redacted(), what, context.Cause(ctx))
	}
	return fmt.Errorf("bindings.http: %s %s: %s%w: %w", method, target.Redacted(), what, component.ErrUnavailable, err)
}

// excerpt returns the start of a response body for an error message.
func excerpt(body []byte) string {
	cut := body
	if len(cut) > maxErrorBody {
		n := maxErrorBody
		for n > maxErrorBody-utf8.UTFMax && !utf8.RuneStart(cut[n]) {
			n-- // do not split the last character
		}
		cut = cut[:n]
	}
	s := strings.ToValidUTF8(string(cut), "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(body) > maxErrorBody {
		s += "…"
	}
	return s
}

// supportedList is the operations for an error message.
func supportedList() string {
	names := make([]string, len(operations))
	for i, op := range operations {
		names[i] = string(op)
	}
	return strings.Join(names, ", ")
}
