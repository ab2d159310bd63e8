package autopipelinebench

// writeScriptSource is a copy of the state store's write script
// (builtin/state/redis/scripts.go), which rueidis runs for Set;
// checkScriptCopy fails the benchmark when the two differ.
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
