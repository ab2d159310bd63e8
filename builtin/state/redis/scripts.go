package redis

import (
	"context"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/state"
)

// Hash fields of a stored value. data and version are Dapr's layout, so
// either runtime reads what the other wrote; contentType is wapr's own and
// Dapr ignores it.
const (
	fieldData        = "data"
	fieldVersion     = "version"
	fieldContentType = "contentType"
)

// writeScript applies a list of writes atomically. It is the only code that
// writes values, so Set, Delete with an ETag, BulkSet and Multi share one
// definition of the conditions and of how versions grow.
//
// KEYS[i] is the key of write i; ARGV holds argsPerWrite values per write:
// kind ("s" set, "d" delete), the expected version ("" for none), "1" for a
// Set with first-write concurrency, the data, the content type ("" for none)
// and the TTL in milliseconds ("0" for none).
//
// The script first checks every condition in order, against the state the
// writes before it leave, and only then writes. Nothing can fail after the
// first write: a wrong-type key fails the HGET of the first loop. So a
// failed check, or an error, leaves nothing applied. It returns 0 when every
// write was applied, or i when the condition of write i failed.
//
// First-write follows Dapr's state.redis: a Set with first-write concurrency
// marks the hash with a field first-write ("0"), and a first-write Set
// without an ETag fails only on a key that carries that mark. So it succeeds
// on a missing key and on a key only ever written without first-write, and
// a second first-write Set without an ETag fails. The mark lives until the
// key is deleted; Dapr writes and reads the same field.
//
// A new version is the old one plus one. A key that does not exist yet
// starts at the server's clock in microseconds, so a key that is deleted and
// written again does not hand out an ETag it had before (Dapr restarts at 1,
// which lets a stale ETag match the new value). Numbers stay below 2^53, so
// Lua's doubles hold them exactly; string.format("%d") prints them without
// an exponent.
var writeScript = goredis.NewScript(writeScriptSource)

const writeScriptSource = `
local function nextVersion(cur)
  local n = tonumber(cur)
  if n then return string.format("%d", n + 1) end
  local t = redis.call("TIME")
  return t[1] .. string.format("%06d", tonumber(t[2]))
end
local seen, marked, version, newVersion = {}, {}, {}, {}
for i = 1, #KEYS do
  local k, b = KEYS[i], (i - 1) * 6
  if not seen[k] then
    seen[k] = true
    version[k] = redis.call("HGET", k, "version")
  end
  local etag, fw = ARGV[b + 2], ARGV[b + 3] == "1"
  if etag ~= "" then
    if version[k] ~= etag then return i end
  elseif fw then
    if marked[k] == nil then marked[k] = redis.call("HEXISTS", k, "first-write") == 1 end
    if marked[k] then return i end
  end
  if ARGV[b + 1] == "s" then
    version[k] = nextVersion(version[k])
    if fw then marked[k] = true end
    newVersion[i] = version[k]
  else
    version[k], marked[k] = false, false
  end
end
for i = 1, #KEYS do
  local k, b = KEYS[i], (i - 1) * 6
  if ARGV[b + 1] == "s" then
    local ct = ARGV[b + 5]
    if ct == "" then
      redis.call("HSET", k, "data", ARGV[b + 4], "version", newVersion[i])
      redis.call("HDEL", k, "contentType")
    else
      redis.call("HSET", k, "data", ARGV[b + 4], "version", newVersion[i], "contentType", ct)
    end
    if ARGV[b + 3] == "1" then
      redis.call("HSET", k, "first-write", "0")
    end
    local ttl = tonumber(ARGV[b + 6])
    if ttl > 0 then
      redis.call("PEXPIRE", k, ttl)
    else
      redis.call("PERSIST", k)
    end
  else
    redis.call("DEL", k)
  end
end
return 0
`

// argsPerWrite is the number of ARGV values writeScript takes per write.
const argsPerWrite = 6

// Write kinds as writeScript spells them.
const (
	kindSet    = "s"
	kindDelete = "d"
)

// write is one Set or Delete, checked for everything that does not depend
// on what is stored.
type write struct {
	key         string
	kind        string
	etag        string // normalised decimal version; "" for none
	firstWrite  bool   // a Set with first-write concurrency
	data        []byte // the caller's slice; only read while sending
	contentType string
	ttl         time.Duration // 0: the value never expires
}

// plainDelete reports whether w can be sent as a bare DEL.
func (w *write) plainDelete() bool { return w.kind == kindDelete && w.etag == "" }

// Boxed once: the arguments most writes share, so building a command does
// not allocate an interface value for each of them.
var (
	argWriteScriptHash any = writeScript.Hash()
	argKindSet         any = kindSet
	argKindDelete      any = kindDelete
	argEmpty           any = ""
	argOne             any = "1"
	argZero            any = "0"
)

// appendArgs appends w's ARGV values for writeScript, for a command sent
// with ctx (see ownedData).
func (w *write) appendArgs(ctx context.Context, args []any) []any {
	kind, etag, firstWrite, data, contentType, ttl := argKindDelete, argEmpty, argEmpty, argEmpty, argEmpty, argZero
	if w.kind == kindSet {
		kind, data = argKindSet, ownedData(ctx, w.data)
	}
	if w.etag != "" {
		etag = w.etag
	}
	if w.firstWrite {
		firstWrite = argOne
	}
	if w.contentType != "" {
		contentType = w.contentType
	}
	if ms := w.ttl.Milliseconds(); ms != 0 {
		ttl = strconv.FormatInt(ms, 10)
	}
	return append(args, kind, etag, firstWrite, data, contentType, ttl)
}

// prepareSet checks req and turns it into a write, applying the store's
// default TTL when req asks for none.
func (s *Store) prepareSet(req *state.SetRequest) (write, error) {
	if req.Key == "" {
		return write{}, s.errNoKey
	}
	etag, firstWrite, err := s.parseGuard(req.Key, req.ETag, req.Options, true)
	if err != nil {
		return write{}, err
	}
	ttl := s.cfg.defaultTTL
	if _, present := req.Metadata[state.MetadataTTL]; present {
		d, ok, err := state.ParseTTL(req.Metadata)
		if err != nil {
			return write{}, fmt.Errorf("%s: key %q: %w", s.prefix, req.Key, err)
		}
		ttl = 0
		if ok {
			ttl = d
		}
	}
	return write{key: req.Key, kind: kindSet, etag: etag, firstWrite: firstWrite, data: req.Value, contentType: req.ContentType, ttl: ttl}, nil
}

// prepareDelete checks req and turns it into a write.
func (s *Store) prepareDelete(req *state.DeleteRequest) (write, error) {
	if req.Key == "" {
		return write{}, s.errNoKey
	}
	etag, _, err := s.parseGuard(req.Key, req.ETag, req.Options, false)
	if err != nil {
		return write{}, err
	}
	return write{key: req.Key, kind: kindDelete, etag: etag}, nil
}

// parseGuard checks the options and returns the ETag as a normalised
// decimal version ("" for none) and whether the write is a first-write Set.
// An empty ETag counts as none, as in Dapr.
func (s *Store) parseGuard(key string, etag *string, opts state.Options, isSet bool) (string, bool, error) {
	switch opts.Concurrency {
	case "", state.FirstWrite, state.LastWrite:
	default:
		return "", false, fmt.Errorf("%s: key %q: %w: concurrency %q", s.prefix, key, component.ErrInvalidArgument, opts.Concurrency)
	}
	switch opts.Consistency {
	case "", state.Strong, state.Eventual:
	default:
		return "", false, fmt.Errorf("%s: key %q: %w: consistency %q", s.prefix, key, component.ErrInvalidArgument, opts.Consistency)
	}
	firstWrite := isSet && opts.Concurrency == state.FirstWrite
	if etag == nil || *etag == "" {
		return "", firstWrite, nil
	}
	v, err := strconv.ParseUint(*etag, 10, 64)
	if err != nil {
		return "", false, state.NewETagInvalid(key)
	}
	return strconv.FormatUint(v, 10), firstWrite, nil
}

// runWrites applies ws atomically with one script call and returns the
// index of the write whose condition failed, or -1.
func (s *Store) runWrites(ctx context.Context, ws []write) (int, error) {
	args := make([]any, 3, 3+len(ws)+argsPerWrite*len(ws))
	args[0], args[1], args[2] = "evalsha", argWriteScriptHash, len(ws)
	for i := range ws {
		args = append(args, ws[i].key)
	}
	for i := range ws {
		args = ws[i].appendArgs(ctx, args)
	}
	cmd := goredis.NewCmd(ctx, args...)
	err := s.send(ctx, cmd)
	if isNoScript(err) {
		cmd = evalInstead(ctx, args)
		err = s.send(ctx, cmd)
	}
	if err != nil {
		return -1, err
	}
	n, err := cmd.Int()
	if err != nil {
		return -1, err
	}
	return n - 1, nil
}

// isNoScript reports the reply of a server that has lost its script cache
// (restarted, SCRIPT FLUSH): it ran nothing, so the call can be sent again
// with the script's source, as goredis.Script.Run does.
func isNoScript(err error) bool { return goredis.HasErrorPrefix(err, "NOSCRIPT") }

// evalInstead returns an EVAL command for the EVALSHA arguments args
// (which it reuses: the EVALSHA command must be finished).
func evalInstead(ctx context.Context, args []any) *goredis.Cmd {
	args[0], args[1] = "eval", writeScriptSource
	return goredis.NewCmd(ctx, args...)
}
