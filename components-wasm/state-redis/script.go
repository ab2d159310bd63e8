package main

// writeScript applies a list of writes atomically; every write of the store
// goes through it (except a delete without an ETag, a plain DEL), so Set,
// Delete, BulkSet and Transact share one definition of the conditions.
//
// KEYS[i] is the key of write i. ARGV holds argsPerWrite values per write:
// kind ("s" set, "d" delete), the expected version ("" for none), "1" when
// the key must be absent (first-write), the data, the content type ("" for
// none) and the TTL in seconds ("0": the value never expires).
//
// The first loop checks every condition in order, against the state the
// writes before it leave; only when all hold does the second loop write.
// Nothing can fail after the first write (a key of another Redis type fails
// its HGET in the first loop), so a failed check or an error leaves nothing
// applied. The script returns 0 when all writes were applied, or i when the
// condition of write i failed.
//
// Layout, shared with Dapr's state.redis and wapr's native driver: a hash
// per key with fields data and version (decimal), plus contentType when the
// value has one. An update adds one to the version; a new key starts at the
// server clock in microseconds, so a key deleted and written again does not
// hand out an ETag it had before. Versions stay below 2^53, exact in Lua's
// numbers, and string.format("%d") prints them without an exponent.
const writeScript = `
local function bump(cur)
  local v = tonumber(cur)
  if v then return string.format("%d", v + 1) end
  local t = redis.call("TIME")
  return t[1] .. string.format("%06d", tonumber(t[2]))
end
local ver, present, newver = {}, {}, {}
for i = 1, #KEYS do
  local k, a = KEYS[i], (i - 1) * 6
  if present[k] == nil then
    ver[k] = redis.call("HGET", k, "version")
    present[k] = ver[k] ~= false or redis.call("EXISTS", k) == 1
  end
  local etag = ARGV[a + 2]
  if etag ~= "" and ver[k] ~= etag then return i end
  if ARGV[a + 3] == "1" and present[k] then return i end
  if ARGV[a + 1] == "s" then
    ver[k] = bump(ver[k])
    present[k] = true
    newver[i] = ver[k]
  else
    ver[k], present[k] = false, false
  end
end
for i = 1, #KEYS do
  local k, a = KEYS[i], (i - 1) * 6
  if ARGV[a + 1] == "s" then
    if ARGV[a + 5] == "" then
      redis.call("HSET", k, "data", ARGV[a + 4], "version", newver[i])
      redis.call("HDEL", k, "contentType")
    else
      redis.call("HSET", k, "data", ARGV[a + 4], "version", newver[i], "contentType", ARGV[a + 5])
    end
    local ttl = tonumber(ARGV[a + 6])
    if ttl > 0 then
      redis.call("EXPIRE", k, ttl)
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
