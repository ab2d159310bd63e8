package main

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wapr-dev/wapr/abi"
	guest "github.com/wapr-dev/wapr/sdk-guest"
	"github.com/wapr-dev/wapr/sdk-guest/hosthttp"
)

var _ guest.OutputBinding = (*binding)(nil)

// Defaults, as the native driver has them.
const (
	defaultResponseTimeout     = 30 * time.Second
	defaultMaxResponseBodySize = 100 << 20
	jsonContentType            = "application/json; charset=utf-8"
	maxErrorBody               = 1 << 10 // how much of a non-2xx body goes into the error
)

// methods maps each operation to its HTTP method; create is post.
var methods = map[string]string{
	"create": "POST", "get": "GET", "head": "HEAD", "post": "POST", "put": "PUT",
	"patch": "PATCH", "delete": "DELETE", "options": "OPTIONS", "trace": "TRACE",
}

// Request metadata keys the binding reads itself; traceHeaders are sent as
// headers although they are lower-case.
const (
	mdPath          = "path"
	mdErrorIfNot2XX = "errorIfNot2XX"
)

var traceHeaders = []string{"traceparent", "tracestate", "baggage"}

// binding is the output binding; it keeps only its configuration.
type binding struct {
	base                string // url without query, fragment and trailing slashes
	query               string // url's query, merged with a request path's
	full                string // url without fragment
	responseTimeout     time.Duration
	maxResponseBodySize int64 // <= 0: no limit
	errorIfNot2XX       bool
	securityToken       string
	securityTokenHeader string
}

func newBinding() *binding { return &binding{} }

// Init parses the metadata and reports every problem at once; it does not
// contact the server.
func (b *binding) Init(_ context.Context, md guest.Metadata) error {
	var problems []string
	fail := func(msg string) { problems = append(problems, msg) }
	if raw, ok := md.Lookup("url"); !ok {
		fail("metadata url is required")
	} else if problem := b.setURL(raw); problem != "" {
		fail("metadata url " + problem)
	}
	var err error
	if b.responseTimeout, err = md.Duration("responseTimeout", defaultResponseTimeout, time.Second); err != nil {
		fail(err.Error())
	} else if b.responseTimeout <= 0 {
		fail("metadata responseTimeout must be positive")
	}
	b.maxResponseBodySize = defaultMaxResponseBodySize
	if v, ok := md.Lookup("maxResponseBodySize"); ok {
		if b.maxResponseBodySize, err = parseByteSize(v); err != nil {
			fail("metadata maxResponseBodySize " + err.Error())
		}
	}
	if b.errorIfNot2XX, err = md.Bool("errorIfNot2XX", true); err != nil {
		fail(err.Error())
	}
	b.securityToken, b.securityTokenHeader = md.Get("securityToken"), md.Get("securityTokenHeader")
	switch {
	case b.securityToken != "" && b.securityTokenHeader == "":
		fail("metadata securityTokenHeader is required when securityToken is set")
	case b.securityToken == "" && b.securityTokenHeader != "":
		fail("metadata securityToken is required when securityTokenHeader is set")
	case b.securityToken != "" && !validHeaderName(b.securityTokenHeader):
		fail("metadata securityTokenHeader must be a single HTTP header name such as Authorization")
	case b.securityToken != "" && !validHeaderValue(b.securityToken):
		fail("metadata securityToken must not contain control characters")
	}
	for _, k := range []string{"mtlsRootCA", "mtlsClientCert", "mtlsClientKey", "mtlsRenegotiation"} {
		if _, ok := md.Lookup(k); ok {
			fail("metadata " + k + " is not supported by the Wasm component: the host runs TLS with its own roots (use the native driver, wapr.dev/runtime: native, for mutual TLS)")
		}
	}
	if len(problems) > 0 {
		return guest.InvalidArgument(strings.Join(problems, "; "))
	}
	return nil
}

// Invoke sends one HTTP request; see README.md for how it is built and the
// response reported.
func (b *binding) Invoke(ctx context.Context, req *abi.InvokeRequest) (*abi.InvokeResponse, error) {
	op := strings.ToLower(req.Operation)
	method, ok := methods[op]
	if !ok {
		return nil, guest.NotSupported("bindings.http: operation " + strconv.Quote(req.Operation) + " is not supported")
	}
	target, err := b.target(req.Metadata[mdPath])
	if err != nil {
		return nil, err
	}
	errorIfNot2XX := b.errorIfNot2XX
	if v := req.Metadata[mdErrorIfNot2XX]; v != "" {
		if errorIfNot2XX, err = strconv.ParseBool(v); err != nil {
			return nil, guest.InvalidArgument("bindings.http: request metadata errorIfNot2XX must be true or false, got " + strconv.Quote(v))
		}
	}
	hasBody := method == "POST" || method == "PUT" || method == "PATCH"
	hreq := &abi.HTTPRequest{
		Method:        method,
		URL:           target,
		TimeoutMillis: uint32(min(b.responseTimeout.Milliseconds(), 1<<31)),
	}
	if hreq.Headers, err = b.headers(req.Metadata, hasBody); err != nil {
		return nil, err
	}
	if hasBody {
		hreq.Body = req.Data
	}
	where := "bindings.http: " + method + " " + redact(target)
	resp, err := hosthttp.Do(ctx, hreq)
	if err != nil {
		return nil, transportError(where, err)
	}
	out := &abi.InvokeResponse{ContentType: header(resp.Headers, "Content-Type"), Metadata: make(map[string]string, len(resp.Headers)+2)}
	for k, v := range resp.Headers {
		out.Metadata[k] = v
	}
	out.Metadata["statusCode"] = strconv.Itoa(int(resp.Status))
	out.Metadata["status"] = statusLine(resp.Status)
	if method != "HEAD" {
		if b.maxResponseBodySize > 0 && int64(len(resp.Body)) > b.maxResponseBodySize {
			return nil, guest.TooLarge(where + ": the response body exceeds maxResponseBodySize (" + strconv.FormatInt(b.maxResponseBodySize, 10) + " bytes)")
		}
		out.Data = resp.Body
	}
	if errorIfNot2XX && (resp.Status < 200 || resp.Status > 299) {
		msg := where + ": received status code " + strconv.Itoa(int(resp.Status))
		if ex := excerpt(resp.Body); ex != "" {
			msg += ": " + ex
		}
		return nil, &guest.Error{Status: abi.StatusInternal, Message: msg}
	}
	return out, nil
}

// headers builds the request headers: the defaults, the security token,
// then every request metadata key starting with an upper-case ASCII letter
// and the W3C trace keys. Metadata wins over the token, as in Dapr.
func (b *binding) headers(md map[string]string, hasBody bool) (map[string]string, error) {
	h := map[string]string{"Accept": jsonContentType}
	if hasBody {
		h["Content-Type"] = jsonContentType
	}
	set := func(k, v string) error {
		if !validHeaderName(k) {
			return guest.InvalidArgument("bindings.http: request metadata key " + strconv.Quote(k) + " is not a valid HTTP header name")
		}
		if !validHeaderValue(v) {
			return guest.InvalidArgument("bindings.http: request metadata " + strconv.Quote(k) + " holds control characters, not allowed in an HTTP header")
		}
		// One spelling per header: a metadata key replaces a default that
		// differs only in case.
		for old := range h {
			if old != k && strings.EqualFold(old, k) {
				delete(h, old)
			}
		}
		h[k] = v
		return nil
	}
	if b.securityTokenHeader != "" {
		set(b.securityTokenHeader, b.securityToken)
	}
	for k, v := range md {
		if k == "" || k[0] < 'A' || k[0] > 'Z' {
			continue
		}
		if err := set(k, v); err != nil {
			return nil, err
		}
	}
	for _, k := range traceHeaders {
		if v := md[k]; v != "" {
			if err := set(k, v); err != nil {
				return nil, err
			}
		}
	}
	return h, nil
}

// header returns the value of name in h, matched case-insensitively.
func header(h map[string]string, name string) string {
	if v, ok := h[name]; ok {
		return v
	}
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// transportError classifies a hosthttp failure: a deadline, an unreachable
// server, a response over the host's cap, a destination the host refuses.
func transportError(where string, err error) error {
	switch {
	case errors.Is(err, hosthttp.ErrRefused), errors.Is(err, hosthttp.ErrIO):
		return guest.Unavailable(errors.New(where + ": " + errText(err)))
	case errors.Is(err, hosthttp.ErrLimit):
		return guest.TooLarge(where + ": the response exceeds the host's size cap")
	case errors.Is(err, hosthttp.ErrInvalid):
		return guest.InvalidArgument(where + ": the host refused the request as malformed")
	case errors.Is(err, hosthttp.ErrDenied):
		return &guest.Error{Status: abi.StatusInternal, Message: where + ": the host does not allow this destination (it is not on the component's allow-list)"}
	}
	if guest.StatusOf(err) == abi.StatusDeadline {
		return guest.Deadline(errors.New(where + ": responseTimeout or the call's deadline passed"))
	}
	return &guest.Error{Status: abi.StatusInternal, Message: where + ": " + errText(err)}
}

// errText is err's message without the URL hosthttp puts first (it would
// repeat the unredacted URL).
func errText(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && strings.HasPrefix(s, "hosthttp:") {
		return s[i+2:]
	}
	return s
}

// setURL checks raw (an absolute http or https URL) and keeps the parts the
// binding joins request paths to. It returns a problem description.
func (b *binding) setURL(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok || (!strings.EqualFold(scheme, "http") && !strings.EqualFold(scheme, "https")) {
		return "must be an absolute http or https URL such as http://host:8080/api"
	}
	if i := strings.IndexAny(rest, "/?#"); i == 0 || rest == "" {
		return "must be an absolute http or https URL such as http://host:8080/api: the host is missing"
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] <= ' ' || raw[i] == 0x7f {
			return "must not contain spaces or control characters"
		}
	}
	full, _, _ := strings.Cut(raw, "#")
	base, query, _ := strings.Cut(full, "?")
	b.full, b.base, b.query = full, strings.TrimRight(base, "/"), query
	return ""
}

// target returns the request URL for the request metadata path: url, or
// url's path joined to path with exactly one slash, path's query merged
// after url's.
func (b *binding) target(path string) (string, error) {
	if path == "" {
		return b.full, nil
	}
	rawPath, rawQuery, _ := strings.Cut(path, "?")
	rawPath, _, _ = strings.Cut(rawPath, "#")
	rawQuery, _, _ = strings.Cut(rawQuery, "#")
	var sb strings.Builder
	sb.WriteString(b.base)
	sb.WriteByte('/')
	for i := 0; i < len(rawPath); i++ {
		if c := rawPath[i]; c < ' ' || c == 0x7f {
			return "", guest.InvalidArgument("bindings.http: request metadata path " + strconv.Quote(path) + " holds control characters")
		}
	}
	escapePath(&sb, strings.TrimLeft(rawPath, "/"))
	q := b.query
	if rawQuery != "" {
		if q != "" {
			q += "&"
		}
		q += rawQuery
	}
	if q != "" {
		sb.WriteByte('?')
		escapePath(&sb, q)
	}
	return sb.String(), nil
}

// escapePath writes s with the bytes a URL cannot carry as they are
// percent-encoded (spaces, non-ASCII, and a few delimiters), as net/url does
// when it prints a path.
func escapePath(sb *strings.Builder, s string) {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"<>\\^`{|}", c) >= 0 {
			sb.WriteByte('%')
			sb.WriteByte(hex[c>>4])
			sb.WriteByte(hex[c&15])
			continue
		}
		sb.WriteByte(c)
	}
}

// redact replaces the password of a URL's user information.
func redact(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndexByte(rest[:end], '@')
	if at < 0 {
		return u
	}
	user, _, hasPass := strings.Cut(rest[:at], ":")
	if !hasPass {
		return u
	}
	return scheme + "://" + user + ":xxxxx" + rest[at:]
}

// parseByteSize reads a whole number of bytes with an optional binary (Ki,
// Mi, Gi, Ti, Pi, Ei) or decimal (k, M, G, T, P, E) suffix; <= 0 means no
// limit.
func parseByteSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{
		{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40}, {"Pi", 1 << 50}, {"Ei", 1 << 60},
		{"k", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}, {"P", 1e15}, {"E", 1e18},
	}
	num, mult := s, int64(1)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = rest, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return 0, errors.New("must be a number of bytes, optionally with a suffix such as Ki, Mi, Gi (1024-based) or k, M, G (1000-based), got " + strconv.Quote(s))
	}
	if n > (1<<63-1)/mult || n < -(1<<63)/mult {
		return 0, errors.New("is too large: " + strconv.Quote(s))
	}
	return n * mult, nil
}

// validHeaderName reports whether s is an HTTP field name (an RFC 9110 token).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHeaderValue reports whether s may be sent as an HTTP field value.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// excerpt returns the start of a response body for an error message,
// control characters replaced by spaces.
func excerpt(body []byte) string {
	cut := body
	if len(cut) > maxErrorBody {
		n := maxErrorBody
		for n > maxErrorBody-utf8.UTFMax && !utf8.RuneStart(cut[n]) {
			n--
		}
		cut = cut[:n]
	}
	s := strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(string(cut), "\uFFFD"))
	if len(body) > maxErrorBody {
		s += "…"
	}
	return s
}

// statusLine returns "200 OK"; the host does not pass the server's reason
// phrase, so it comes from this table of registered codes.
func statusLine(code uint32) string {
	s := strconv.Itoa(int(code))
	if text := statusText[code]; text != "" {
		return s + " " + text
	}
	return s
}

var statusText = map[uint32]string{
	100: "Continue", 101: "Switching Protocols", 103: "Early Hints",
	200: "OK", 201: "Created", 202: "Accepted", 203: "Non-Authoritative Information", 204: "No Content",
	205: "Reset Content", 206: "Partial Content", 207: "Multi-Status",
	300: "Multiple Choices", 301: "Moved Permanently", 302: "Found", 303: "See Other", 304: "Not Modified",
	307: "Temporary Redirect", 308: "Permanent Redirect",
	400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden", 404: "Not Found",
	405: "Method Not Allowed", 406: "Not Acceptable", 407: "Proxy Authentication Required", 408: "Request Timeout",
	409: "Conflict", 410: "Gone", 411: "Length Required", 412: "Precondition Failed", 413: "Request Entity Too Large",
	414: "Request URI Too Long", 415: "Unsupported Media Type", 416: "Requested Range Not Satisfiable",
	417: "Expectation Failed", 418: "I'm a teapot", 421: "Misdirected Request", 422: "Unprocessable Entity",
	423: "Locked", 424: "Failed Dependency", 425: "Too Early", 426: "Upgrade Required", 428: "Precondition Required",
	429: "Too Many Requests", 431: "Request Header Fields Too Large", 451: "Unavailable For Legal Reasons",
	500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
	504: "Gateway Timeout", 505: "HTTP Version Not Supported", 507: "Insufficient Storage", 508: "Loop Detected",
	511: "Network Authentication Required",
}
