package main

import (
	"context"
	"errors"
	"strconv"
	"time"
	"unsafe"

	"github.com/wapr-dev/wapr/abi"
	redis "github.com/wapr-dev/wapr/components-wasm/internal/resp"
	guest "github.com/wapr-dev/wapr/sdk-guest"
)

var (
	_ guest.StateStore              = (*store)(nil)
	_ guest.BulkStateStore          = (*store)(nil)
	_ guest.TransactionalStateStore = (*store)(nil)
	_ guest.Closer                  = (*store)(nil)
)

// Request and response metadata keys (Dapr's names).
const (
	mdTTL           = "ttlInSeconds"
	mdTTLExpireTime = "ttlExpireTime"
)

// Hash fields of a stored value.
const (
	fieldData        = "data"
	fieldVersion     = "version"
	fieldContentType = "contentType"
)

// store is the state store. An instance serves one call at a time, so it
// has no lock; it holds one Redis connection.
//
// Get and Set allocate nothing in the steady state (allocation is slow in
// a Go guest): commands are queued into the client's reused buffer, replies
// are parsed into its reused buffers, and Get's response is a reused struct
// whose bytes and strings alias those replies. That is safe because the
// SDK encodes a response as soon as the method returns, before the next
// command on the client.
type store struct {
	client     *redis.Client
	sha        string // writeScript's SHA1 from SCRIPT LOAD; "" to always EVAL
	defaultTTL int64  // seconds; 0: values never expire unless asked

	got    abi.StateGetResponse // Get's response, reused
	script redis.Command        // the write script call, rebuilt per write
}

func newStore() *store { return &store{} }

// Init reads the metadata and connects (so a wrong address or password
// fails the instance at once).
func (s *store) Init(ctx context.Context, md guest.Metadata) error {
	var problems []string
	cfg := redis.ParseConfig(md, &problems)
	ttl, err := md.Int(mdTTL, 0)
	switch {
	case err != nil:
		problems = append(problems, err.Error())
	case ttl > 0:
		s.defaultTTL = int64(ttl)
	case ttl < -1:
		problems = append(problems, "metadata ttlInSeconds must be positive, or -1 or 0 for no default TTL")
	}
	if err := redis.ConfigError(problems); err != nil {
		return err
	}
	s.client = redis.NewClient(cfg)
	s.client.Hello = []*redis.Command{redis.Cmd("SCRIPT", "LOAD", writeScript)}
	s.client.HelloDone = func(r []redis.Value) error {
		s.sha = ""
		if r[0].Err() == nil { // ACLs may forbid SCRIPT LOAD: then EVAL every time
			s.sha = r[0].Text()
		}
		return nil
	}
	if err := s.client.Connect(ctx); err != nil {
		return s.wrap("connect", "", err)
	}
	return nil
}

// Close drops the connection.
func (s *store) Close(context.Context) error {
	if s.client != nil {
		s.client.Close()
	}
	return nil
}

// The constant arguments of the read commands, encoded once.
var (
	argsHMGET  = redis.Cmd("HMGET")
	argsFields = redis.Cmd(fieldData, fieldVersion, fieldContentType)
	argsPTTL   = redis.Cmd("PTTL")
)

// queueRead queues the two commands that read one key, HMGET key data
// version contentType and PTTL key, answered in one round trip.
func queueRead(c *redis.Client, key string) {
	c.Start(5)
	c.Args(argsHMGET)
	c.Arg(key)
	c.Args(argsFields)
	c.Start(2)
	c.Args(argsPTTL)
	c.Arg(key)
}

// readResult fills resp from the replies of queueRead and reports whether
// the key holds a value. resp's data and strings alias the replies. *now
// is read from the clock only when the value expires, and then once: a
// Go guest pays for every clock read.
func readResult(fields, ttl redis.Value, now *time.Time, resp *abi.StateGetResponse) (bool, error) {
	if err := fields.Err(); err != nil {
		return false, err
	}
	if len(fields.Arr) != 3 || fields.Arr[0].IsNil {
		return false, nil
	}
	*resp = abi.StateGetResponse{Data: fields.Arr[0].Str, ETag: alias(fields.Arr[1].Str), ContentType: alias(fields.Arr[2].Str)}
	if ttl.Kind == ':' && ttl.Num > 0 {
		if now.IsZero() {
			*now = time.Now()
		}
		exp := now.Add(time.Duration(ttl.Num) * time.Millisecond).UTC()
		resp.Metadata = map[string]string{mdTTLExpireTime: exp.Format(time.RFC3339)}
	}
	return true, nil
}

// alias returns b as a string without copying it. The string is only as
// long-lived as b's bytes stay unchanged: here, reply bytes that the client
// leaves alone until its next command, while the response holding the
// string is encoded before then.
func alias(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// Get reads a value with its ETag, content type and, when it expires,
// ttlExpireTime metadata, in one round trip. The response is reused by the
// next Get and aliases the client's reply buffers (see store).
func (s *store) Get(ctx context.Context, req *abi.StateGetRequest) (*abi.StateGetResponse, error) {
	if req.Key == "" {
		return nil, errNoKey
	}
	queueRead(s.client, req.Key)
	r, err := s.client.Exec(ctx, 0)
	if err != nil {
		return nil, s.wrap("get", req.Key, err)
	}
	var now time.Time
	found, err := readResult(r[0], r[1], &now, &s.got)
	if err != nil {
		return nil, s.wrap("get", req.Key, err)
	}
	if !found {
		return nil, guest.NotFound(req.Key)
	}
	return &s.got, nil
}

// Set writes a redis.Value, guarded by its ETag or first-write concurrency.
func (s *store) Set(ctx context.Context, req *abi.StateSetRequest) error {
	w, err := s.prepareSet(req)
	if err != nil {
		return err
	}
	return s.writeOne(ctx, &w)
}

// Delete removes a key, guarded by its ETag when one is given; deleting a
// missing key without an ETag succeeds.
func (s *store) Delete(ctx context.Context, req *abi.StateDeleteRequest) error {
	w, err := prepareDelete(req)
	if err != nil {
		return err
	}
	return s.writeOne(ctx, &w)
}

func (s *store) writeOne(ctx context.Context, w *write) error {
	if w.plainDelete() {
		s.client.Queue("DEL", w.key)
		r, err := s.client.Exec(ctx, 0)
		if err == nil {
			err = r[0].Err()
		}
		if err != nil {
			return s.wrap("delete", w.key, err)
		}
		return nil
	}
	failed, err := s.runWrites(ctx, []write{*w})
	if err != nil {
		return s.wrap(w.op(), w.key, err)
	}
	if failed >= 0 {
		return guest.ETagMismatch(w.key)
	}
	return nil
}

// BulkGet reads every key in one pipelined round trip. It is not a
// snapshot. A key that cannot be read (empty, or of another Redis type)
// fails its own item; a connection failure fails the call.
func (s *store) BulkGet(ctx context.Context, req *abi.StateBulkGetRequest) (*abi.StateBulkGetResponse, error) {
	resp := &abi.StateBulkGetResponse{Items: make([]abi.StateBulkGetItem, len(req.Requests))}
	queued := false
	for i := range req.Requests {
		key := req.Requests[i].Key
		resp.Items[i].Key = key
		if key == "" {
			resp.Items[i].Error = errNoKey.Error()
			continue
		}
		queueRead(s.client, key)
		queued = true
	}
	if !queued {
		return resp, nil
	}
	replies, err := s.client.Exec(ctx, 0)
	if err != nil {
		return nil, s.wrap("bulk get", "", err)
	}
	var now time.Time
	var got abi.StateGetResponse
	for i := range resp.Items {
		it := &resp.Items[i]
		if it.Key == "" {
			continue
		}
		found, err := readResult(replies[0], replies[1], &now, &got)
		replies = replies[2:]
		switch {
		case err != nil:
			it.Error = s.wrap("get", it.Key, err).Error()
		case found:
			it.Found, it.Data, it.ETag, it.Metadata, it.ContentType = true, got.Data, got.ETag, got.Metadata, got.ContentType
		}
	}
	return resp, nil
}

// BulkSet applies each request as Set would, in one pipelined round trip;
// not atomically: each item is written or fails on its own.
func (s *store) BulkSet(ctx context.Context, req *abi.StateBulkSetRequest) (*abi.BulkResult, error) {
	res := &abi.BulkResult{}
	ws := make([]write, 0, len(req.Requests))
	for i := range req.Requests {
		w, err := s.prepareSet(&req.Requests[i])
		if err != nil {
			res.Errors = append(res.Errors, itemError(i, req.Requests[i].Key, err))
			continue
		}
		w.idx = i
		ws = append(ws, w)
	}
	return res, s.applyEach(ctx, ws, res)
}

// BulkDelete applies each request as Delete would, in one pipelined round
// trip; not atomically.
func (s *store) BulkDelete(ctx context.Context, req *abi.StateBulkDeleteRequest) (*abi.BulkResult, error) {
	res := &abi.BulkResult{}
	ws := make([]write, 0, len(req.Requests))
	for i := range req.Requests {
		w, err := prepareDelete(&req.Requests[i])
		if err != nil {
			res.Errors = append(res.Errors, itemError(i, req.Requests[i].Key, err))
			continue
		}
		w.idx = i
		ws = append(ws, w)
	}
	return res, s.applyEach(ctx, ws, res)
}

// applyEach sends every write on its own (DEL or one script call each) in
// one pipeline and records the failures in res. A connection failure fails
// the call: the outcome of every write is then unknown.
func (s *store) applyEach(ctx context.Context, ws []write, res *abi.BulkResult) error {
	if len(ws) == 0 {
		return nil
	}
	cmds := make([]*redis.Command, len(ws))
	for i := range ws {
		if ws[i].plainDelete() {
			cmds[i] = redis.Cmd("DEL", ws[i].key)
		} else {
			cmds[i] = s.scriptCommand(new(redis.Command), s.sha != "", ws[i:i+1])
		}
	}
	replies, err := s.client.Pipeline(ctx, cmds, 0)
	if err != nil {
		return s.wrap("bulk write", "", err)
	}
	// A server that lost its script cache (restart, SCRIPT FLUSH) answers
	// NOSCRIPT without running anything: send those again with the source.
	var again []int
	for i, r := range replies {
		if redis.IsError(r.Err(), "NOSCRIPT") {
			again = append(again, i)
		}
	}
	if len(again) > 0 {
		retry := make([]*redis.Command, len(again))
		for j, i := range again {
			retry[j] = s.scriptCommand(new(redis.Command), false, ws[i:i+1])
		}
		r2, err := s.client.Pipeline(ctx, retry, 0)
		if err != nil {
			return s.wrap("bulk write", "", err)
		}
		for j, i := range again {
			replies[i] = r2[j]
		}
	}
	for i, r := range replies {
		w := &ws[i]
		switch {
		case r.Err() != nil:
			res.Errors = append(res.Errors, itemError(w.idx, w.key, s.wrap(w.op(), w.key, r.Err())))
		case r.Kind == ':' && r.Num != 0 && !w.plainDelete():
			res.Errors = append(res.Errors, itemError(w.idx, w.key, guest.ETagMismatch(w.key)))
		}
	}
	return nil
}

// Transact applies the operations in order, atomically, in one script
// call: every ETag and first-write condition is checked first, then every
// write is applied, so a failed condition leaves nothing applied and no
// other client sees a partial transaction.
func (s *store) Transact(ctx context.Context, req *abi.StateTransactRequest) error {
	ws := make([]write, len(req.Operations))
	for i, op := range req.Operations {
		var err error
		switch {
		case op.Set != nil:
			ws[i], err = s.prepareSet(op.Set)
		case op.Delete != nil:
			ws[i], err = prepareDelete(op.Delete)
		default:
			err = guest.InvalidArgument("empty operation")
		}
		if err != nil {
			return operationError(i, err)
		}
	}
	if len(ws) == 0 {
		return nil
	}
	failed, err := s.runWrites(ctx, ws)
	if err != nil {
		return s.wrap("transaction", "", err)
	}
	if failed >= 0 {
		return operationError(failed, guest.ETagMismatch(ws[failed].key))
	}
	return nil
}

func operationError(i int, err error) error {
	e := &guest.Error{Status: guest.StatusOf(err), Message: "operation " + strconv.Itoa(i), Err: err}
	if ge, ok := errors.AsType[*guest.Error](err); ok {
		e.Key = ge.Key
		e.Err = errors.New(ge.Message)
	}
	return e
}

// runWrites applies ws with one script call and returns the index of the
// write whose condition failed, or -1.
func (s *store) runWrites(ctx context.Context, ws []write) (int, error) {
	useSHA := s.sha != ""
	v, err := s.runScript(ctx, useSHA, ws)
	if useSHA && redis.IsError(err, "NOSCRIPT") {
		v, err = s.runScript(ctx, false, ws)
	}
	if err != nil {
		return -1, err
	}
	if v.Kind != ':' {
		return -1, errors.New("unexpected reply to the write script")
	}
	return int(v.Num) - 1, nil
}

// runScript runs one script call for ws and returns its reply; an error
// reply is returned as an error.
func (s *store) runScript(ctx context.Context, useSHA bool, ws []write) (redis.Value, error) {
	s.client.QueueCommand(s.scriptCommand(&s.script, useSHA, ws))
	r, err := s.client.Exec(ctx, 0)
	if err != nil {
		return redis.Value{}, err
	}
	return r[0], r[0].Err()
}

// scriptCommand builds EVALSHA (or EVAL) of writeScript for ws into c,
// replacing what c held, and returns c.
func (s *store) scriptCommand(c *redis.Command, useSHA bool, ws []write) *redis.Command {
	c.Reset()
	if useSHA {
		c.Str("EVALSHA").Str(s.sha)
	} else {
		c.Str("EVAL").Str(writeScript)
	}
	c.Int(int64(len(ws)))
	for i := range ws {
		c.Str(ws[i].key)
	}
	for i := range ws {
		ws[i].appendArgs(c)
	}
	return c
}

// write is one Set or Delete, checked for everything that does not depend
// on what is stored.
type write struct {
	idx         int // position in a bulk request
	key         string
	del         bool
	version     uint64 // the ETag as a version, when hasVersion
	hasVersion  bool   // an ETag guards the write
	ifAbsent    bool   // first-write Set without an ETag
	data        []byte // the request's bytes; only read while building the command
	contentType string
	ttl         int64 // seconds; 0: never expires
}

func (w *write) plainDelete() bool { return w.del && !w.hasVersion }

func (w *write) op() string {
	if w.del {
		return "delete"
	}
	return "set"
}

func (w *write) appendArgs(c *redis.Command) {
	kind, ifAbsent := "s", ""
	if w.del {
		kind = "d"
	}
	if w.ifAbsent {
		ifAbsent = "1"
	}
	c.Str(kind)
	if w.hasVersion {
		c.Uint(w.version)
	} else {
		c.Str("")
	}
	c.Str(ifAbsent).Bytes(w.data).Str(w.contentType).Int(w.ttl)
}

var errNoKey = guest.InvalidArgument("empty key")

func (s *store) prepareSet(req *abi.StateSetRequest) (write, error) {
	version, hasVersion, ifAbsent, err := parseGuard(req.Key, req.HasETag, req.ETag, req.Concurrency, req.Consistency, true)
	if err != nil {
		return write{}, err
	}
	ttl := s.defaultTTL
	if v, present := req.Metadata[mdTTL]; present {
		n, err := strconv.ParseInt(v, 10, 64)
		switch {
		case err != nil:
			return write{}, &guest.Error{Status: abi.StatusInvalidArgument, Message: "metadata ttlInSeconds " + strconv.Quote(v) + " is not an integer", Key: req.Key}
		case n == -1:
			ttl = 0
		case n <= 0:
			return write{}, &guest.Error{Status: abi.StatusInvalidArgument, Message: "metadata ttlInSeconds must be positive or -1, got " + v, Key: req.Key}
		default:
			ttl = n
		}
	}
	return write{key: req.Key, version: version, hasVersion: hasVersion, ifAbsent: ifAbsent, data: req.Value, contentType: req.ContentType, ttl: ttl}, nil
}

func prepareDelete(req *abi.StateDeleteRequest) (write, error) {
	version, hasVersion, _, err := parseGuard(req.Key, req.HasETag, req.ETag, req.Concurrency, req.Consistency, false)
	if err != nil {
		return write{}, err
	}
	return write{key: req.Key, del: true, version: version, hasVersion: hasVersion}, nil
}

// parseGuard checks the options and returns the ETag as a version (none
// when hasVersion is false; an empty ETag counts as none, as in Dapr) and
// whether a Set must find the key absent.
func parseGuard(key string, hasETag bool, etag string, concurrency, consistency uint8, isSet bool) (version uint64, hasVersion, ifAbsent bool, err error) {
	if key == "" {
		return 0, false, false, errNoKey
	}
	if concurrency > abi.ConcurrencyLastWrite || consistency > abi.ConsistencyStrong {
		return 0, false, false, &guest.Error{Status: abi.StatusInvalidArgument, Message: "unknown concurrency or consistency option", Key: key}
	}
	if !hasETag || etag == "" {
		return 0, false, isSet && concurrency == abi.ConcurrencyFirstWrite, nil
	}
	v, err := strconv.ParseUint(etag, 10, 64)
	if err != nil {
		return 0, false, false, guest.ETagInvalid(key)
	}
	return v, true, false, nil
}

// itemError is the failure of request i (of key) of a bulk write.
func itemError(i int, key string, err error) abi.ItemError {
	ie := abi.ItemError{Key: key, Status: guest.StatusOf(err), Message: err.Error(), Index: uint32(i), HasIndex: true}
	if ge, ok := errors.AsType[*guest.Error](err); ok && ge.Message != "" && ge.Err == nil {
		ie.Message = ge.Message
	}
	return ie
}

// wrap turns a client error into the component's error: a deadline is
// StatusDeadline, a lost or refused connection (or a server that cannot
// serve right now) StatusUnavailable, any other error reply StatusInternal.
func (s *store) wrap(op, key string, err error) error {
	what := "state.redis: " + op
	if key != "" {
		what += " " + strconv.Quote(key)
	}
	e := &guest.Error{Status: abi.StatusInternal, Message: what, Err: err}
	switch re, isReply := errors.AsType[*redis.Error](err); {
	case redis.IsTimeout(err):
		e.Status = abi.StatusDeadline
	case isReply:
		for _, p := range transientReplies {
			if re.HasPrefix(p) {
				e.Status = abi.StatusUnavailable
			}
		}
	default:
		e.Status = abi.StatusUnavailable
	}
	return e
}

// transientReplies are error replies meaning the server cannot serve now
// rather than that the request is wrong.
var transientReplies = []string{"LOADING", "MASTERDOWN", "BUSY", "TRYAGAIN", "CLUSTERDOWN", "MISCONF"}
