"""The Redis store's Lua scripts: each multi-key change runs atomically on the server.

Redis runs one script at a time, so a script is a transaction: a revocation's
sequence number (``INCR``) is taken in commit order, as SQLite's
``AUTOINCREMENT`` is, and a compare-and-swap cannot interleave with another.
Keys are built inside the scripts from the prefix (``ARGV[1]``): this store
runs on one Redis server (or a primary with replicas), not Redis Cluster.

Times are passed as Python ``repr`` strings and stored as given, so a float
comes back exactly as it went in (Lua's ``tostring`` would round it). Every
record key expires at its record's expiry plus a margin (``ARGV[3]``), so that
``purge_expired`` normally finds and unindexes it first; index keys expire with
their longest-lived member (``extend``).
"""

from __future__ import annotations

# ARGV[1] prefix, ARGV[2] "now" (stored as given), ARGV[3] margin in seconds; script arguments from ARGV[4].
PRELUDE = r"""
local P = ARGV[1]
local NOW = ARGV[2]
local now = tonumber(NOW)
local MARGIN = tonumber(ARGV[3])
local last_seq = false

local function extend(key, at)
  local current = redis.call('EXPIRETIME', key)
  if current ~= -2 and current < at then redis.call('EXPIREAT', key, at) end
end

local function keep_until(expires)
  return math.ceil(tonumber(expires)) + MARGIN
end

-- The log's positions. A lost counter (expired, or a Redis restarted without persistence) starts again
-- at the current time in microseconds: above every position handed out before, so a reader that
-- remembers its last position misses nothing.
local function next_seq()
  local key = P .. 'seq'
  if redis.call('EXISTS', key) == 0 then
    local t = redis.call('TIME')
    redis.call('SET', key, t[1] .. string.format('%06d', tonumber(t[2])))
  end
  return redis.call('INCR', key)
end

-- Mark a session revoked and log it, once; name it in `ended` (a set) while unexpired.
local function revoke_session(sid, ended)
  local key = P .. 's:' .. sid
  local f = redis.call('HMGET', key, 'e', 'rv')
  if not f[1] then return end
  if not f[2] then
    redis.call('HSET', key, 'rv', NOW)
    local seq = next_seq()
    redis.call('ZADD', P .. 'rl', seq, sid)
    redis.call('ZADD', P .. 'rle', f[1], sid)
    local at = keep_until(f[1])
    extend(P .. 'rl', at)
    extend(P .. 'rle', at)
    extend(P .. 'seq', at)
    last_seq = seq
  end
  if tonumber(f[1]) > now then ended[sid] = true end
end

-- Log an entry that is no session (a bearer-token cutoff), kept until `expires`.
local function log_entry(entry, expires)
  local seq = next_seq()
  redis.call('ZADD', P .. 'rl', seq, entry)
  redis.call('ZADD', P .. 'rle', expires, entry)
  local at = keep_until(expires)
  extend(P .. 'rl', at)
  extend(P .. 'rle', at)
  extend(P .. 'seq', at)
  last_seq = seq
end

local function mark_series(series)
  local key = P .. 'r:' .. series
  if redis.call('EXISTS', key) == 1 and not redis.call('HGET', key, 'rv') then
    redis.call('HSET', key, 'rv', NOW)
  end
end

local function revoke_series(series, ended)
  mark_series(series)
  for _, sid in ipairs(redis.call('SMEMBERS', P .. 'ss:' .. series)) do revoke_session(sid, ended) end
end

-- Push the news to every instance, and return the ended ids sorted.
local function finish(ended)
  if last_seq then redis.call('PUBLISH', P .. 'revoked', last_seq) end
  local ids = {}
  for sid in pairs(ended) do ids[#ids + 1] = sid end
  table.sort(ids)
  return ids
end
"""

# ARGV[4] kind; session: [5] id; series: [5] id; user: [5] user id, [6] cutoff entry, [7] its expiry;
# all: [6] cutoff entry, [7] its expiry; provider: [5] provider, [6] sub, [7] sid ('' = not given).
REVOKE = PRELUDE + r"""
local kind, a, b, c = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local ended = {}
if kind == 'session' then
  revoke_session(a, ended)
elseif kind == 'series' then
  revoke_series(a, ended)
elseif kind == 'user' then
  for _, series in ipairs(redis.call('SMEMBERS', P .. 'ru:' .. a)) do mark_series(series) end
  for _, sid in ipairs(redis.call('SMEMBERS', P .. 'su:' .. a)) do revoke_session(sid, ended) end
  log_entry(b, c)
elseif kind == 'all' then
  for _, series in ipairs(redis.call('ZRANGE', P .. 'rx', 0, -1)) do mark_series(series) end
  for _, sid in ipairs(redis.call('ZRANGE', P .. 'sx', 0, -1)) do revoke_session(sid, ended) end
  log_entry(b, c)
elseif kind == 'provider' then
  local index
  if c ~= '' then index = P .. 'pd:' .. a .. '\0' .. c else index = P .. 'pu:' .. a .. '\0' .. b end
  for _, sid in ipairs(redis.call('SMEMBERS', index)) do
    local p = redis.call('HMGET', P .. 'p:' .. sid, 'pv', 'sub', 'sid', 'sr')
    if p[1] == a and (c == '' or p[3] == c) and (b == '' or p[2] == b) then
      -- the record's own series: the sign-in's session may have expired and been purged long ago
      local series = p[4] or redis.call('HGET', P .. 's:' .. sid, 'sr')
      revoke_session(sid, ended)
      if series then revoke_series(series, ended) end
    end
  end
else
  return redis.error_reply('unknown revocation kind')
end
return finish(ended)
"""

# ARGV[2] is the session's creation time (a session born revoked is revoked then, as in SQLite);
# ARGV[4..11] id, user, created, expires, series ('' none), user agent, client address, link key ('' none).
# Born revoked when its series is revoked, or its link key no longer links to its user (unlinked meanwhile).
# Writing a session that exists already changes nothing: a retried call is harmless.
CREATE_SESSION = PRELUDE + r"""
local sid, user, created, expires, series, link = ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[11]
local key = P .. 's:' .. sid
local at = keep_until(expires)
if redis.call('EXISTS', key) == 0 then
  redis.call('HSET', key, 'u', user, 'c', created, 'e', expires, 'ua', ARGV[9], 'ad', ARGV[10])
  if series ~= '' then redis.call('HSET', key, 'sr', series) end
  if link ~= '' then redis.call('HSET', key, 'lk', link) end
  redis.call('EXPIREAT', key, at)
  redis.call('SADD', P .. 'su:' .. user, sid)
  extend(P .. 'su:' .. user, at)
  if series ~= '' then
    redis.call('SADD', P .. 'ss:' .. series, sid)
    extend(P .. 'ss:' .. series, at)
  end
  redis.call('ZADD', P .. 'sx', expires, sid)
  extend(P .. 'sx', at)
end
local ended = {}
if (series ~= '' and redis.call('HGET', P .. 'r:' .. series, 'rv'))
    or (link ~= '' and redis.call('HGET', P .. 'k:' .. link, 'u') ~= user) then
  revoke_session(sid, ended)
end
finish(ended)
return 1
"""

# ARGV[4] session id, [5] provider, [6] sub, [7] sid ('' none), [8] ID token, [9] expires, [10] series ('' none).
# Kept (record, indexes, and pr:<series> naming it) until the later of the session's expiry and its series'.
PUT_PROVIDER_SESSION = PRELUDE + r"""
local sid, provider, sub, op_sid, expires, series = ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[9], ARGV[10]
local key = P .. 'p:' .. sid
local keep = expires
if series ~= '' then
  local e = redis.call('HGET', P .. 'r:' .. series, 'e')
  if e and tonumber(e) > tonumber(keep) then keep = e end
end
local at = keep_until(keep)
redis.call('DEL', key)
redis.call('HSET', key, 'pv', provider, 'sub', sub, 'it', ARGV[8], 'e', expires)
if op_sid ~= '' then redis.call('HSET', key, 'sid', op_sid) end
if series ~= '' then
  redis.call('HSET', key, 'sr', series)
  redis.call('SET', P .. 'pr:' .. series, sid, 'EXAT', at)
end
redis.call('EXPIREAT', key, at)
local indexes = {P .. 'pu:' .. provider .. '\0' .. sub}
if op_sid ~= '' then indexes[2] = P .. 'pd:' .. provider .. '\0' .. op_sid end
for _, index in ipairs(indexes) do
  redis.call('SADD', index, sid)
  extend(index, at)
end
redis.call('ZADD', P .. 'px', keep, sid)
extend(P .. 'px', at)
return 1
"""

# ARGV[4] session id, or '' for ARGV[5], a series. The session's own provider session, else the one that started
# the series it was restored from (or series ARGV[5]): {its session id, field, value, ...}, or {} when there is none.
GET_PROVIDER_SESSION = r"""
local P, sid, series = ARGV[1], ARGV[4], ARGV[5]
local row = {}
if sid ~= '' then
  row = redis.call('HGETALL', P .. 'p:' .. sid)
  if #row == 0 then series = redis.call('HGET', P .. 's:' .. sid, 'sr') end
end
if #row == 0 then
  if not series or series == '' then return {} end
  sid = redis.call('GET', P .. 'pr:' .. series)
  if not sid then return {} end
  row = redis.call('HGETALL', P .. 'p:' .. sid)
  if #row == 0 then return {} end
end
table.insert(row, 1, sid)
return row
"""

# ARGV[4] series, [5] old hash, [6] new hash. 1 when swapped, or when this very swap was done already
# (the same old and new hashes: a reply lost and the call retried), so a retry is never taken for theft.
ROTATE_SERIES = PRELUDE + r"""
local key = P .. 'r:' .. ARGV[4]
local f = redis.call('HMGET', key, 'th', 'ph', 'rv')
if not f[1] or f[3] then return 0 end
if f[1] == ARGV[5] then
  redis.call('HSET', key, 'ph', ARGV[5], 'th', ARGV[6], 'ra', NOW, 'lu', NOW)
  return 1
end
if f[1] == ARGV[6] and f[2] == ARGV[5] then return 1 end
return 0
"""

# KEYS[1] the nonce; ARGV[1] this call's random token, ARGV[2] EXAT. 1 when this call recorded it.
USE_ONCE = r"""
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EXAT', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end
return 0
"""

# KEYS[1] the token's key; ARGV[1] this call's random token, [2] expires, [3] now, [4] EXAT.
# As SQLite: a record whose expiry is before `now` is forgotten; one still valid makes this a replay.
RECORD_LOGOUT_JTI = r"""
local v = redis.call('GET', KEYS[1])
if v then
  local sep = string.find(v, ' ', 1, true)
  if string.sub(v, sep + 1) == ARGV[1] then return 1 end
  if tonumber(string.sub(v, 1, sep - 1)) >= tonumber(ARGV[3]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2] .. ' ' .. ARGV[1], 'EXAT', ARGV[4])
return 1
"""

# ARGV[4] identity key, [5] user, [6] provider, [7] created, [8] how. Links have no expiry: they are the
# account's, like a user record (bounded by the number of people, not by traffic). Written only when the key
# is linked to nobody: 0 when it is (never replaced); 1 when written, or when this very record is there already
# (the call retried after a lost reply).
LINK = PRELUDE + r"""
local key = P .. 'k:' .. ARGV[4]
local f = redis.call('HMGET', key, 'u', 'pv', 'c', 'h')
if f[1] then
  if f[1] == ARGV[5] and f[2] == ARGV[6] and f[3] == ARGV[7] and f[4] == ARGV[8] then return 1 end
  return 0
end
redis.call('HSET', key, 'u', ARGV[5], 'pv', ARGV[6], 'c', ARGV[7], 'h', ARGV[8])
redis.call('SADD', P .. 'ku:' .. ARGV[5], ARGV[4])
return 1
"""

# ARGV[4] identity key, [5] user. The link goes, and the user's series and sessions it started ('lk') end:
# {1, ended session ids...}; {0} when the key is not linked to the user (nothing changed).
UNLINK = PRELUDE + r"""
local link, user = ARGV[4], ARGV[5]
local key = P .. 'k:' .. link
if redis.call('HGET', key, 'u') ~= user then return {0} end
redis.call('DEL', key)
redis.call('SREM', P .. 'ku:' .. user, link)
local ended = {}
for _, series in ipairs(redis.call('SMEMBERS', P .. 'ru:' .. user)) do
  if redis.call('HGET', P .. 'r:' .. series, 'lk') == link then revoke_series(series, ended) end
end
for _, sid in ipairs(redis.call('SMEMBERS', P .. 'su:' .. user)) do
  if redis.call('HGET', P .. 's:' .. sid, 'lk') == link then revoke_session(sid, ended) end
end
local ids = finish(ended)
table.insert(ids, 1, 1)
return ids
"""

# ARGV[2] now, ARGV[4] the position read after. The unexpired ids revoked after it, then the last position seen.
READ_LOG = r"""
local P = ARGV[1]
local now = tonumber(ARGV[2])
local rows = redis.call('ZRANGEBYSCORE', P .. 'rl', '(' .. ARGV[4], '+inf', 'WITHSCORES')
local out = {}
local last = ARGV[4]
for i = 1, #rows, 2 do
  local e = redis.call('ZSCORE', P .. 'rle', rows[i])
  if e and tonumber(e) > now then out[#out + 1] = rows[i] end
  last = rows[i + 1]
end
out[#out + 1] = last
return out
"""

# ARGV[4] at most this many of each kind per run. Returns {records removed, 1 if there may be more}.
PURGE = PRELUDE + r"""
local limit = tonumber(ARGV[4])
local count, more = 0, 0
local function due(zset)
  local ids = redis.call('ZRANGEBYSCORE', zset, '-inf', '(' .. NOW, 'LIMIT', 0, limit)
  if #ids == limit then more = 1 end
  return ids
end
for _, sid in ipairs(due(P .. 'sx')) do
  local f = redis.call('HMGET', P .. 's:' .. sid, 'u', 'sr')
  if f[1] then redis.call('SREM', P .. 'su:' .. f[1], sid) end
  if f[2] then redis.call('SREM', P .. 'ss:' .. f[2], sid) end
  count = count + redis.call('DEL', P .. 's:' .. sid)
  redis.call('ZREM', P .. 'sx', sid)
end
for _, series in ipairs(due(P .. 'rx')) do
  local user = redis.call('HGET', P .. 'r:' .. series, 'u')
  if user then redis.call('SREM', P .. 'ru:' .. user, series) end
  count = count + redis.call('DEL', P .. 'r:' .. series)
  redis.call('ZREM', P .. 'rx', series)
end
for _, state in ipairs(due(P .. 'lx')) do
  count = count + redis.call('DEL', P .. 'l:' .. state)
  redis.call('ZREM', P .. 'lx', state)
end
for _, sid in ipairs(due(P .. 'px')) do
  local p = redis.call('HMGET', P .. 'p:' .. sid, 'pv', 'sub', 'sid', 'sr')
  if p[1] then
    redis.call('SREM', P .. 'pu:' .. p[1] .. '\0' .. p[2], sid)
    if p[3] then redis.call('SREM', P .. 'pd:' .. p[1] .. '\0' .. p[3], sid) end
  end
  if p[4] and redis.call('GET', P .. 'pr:' .. p[4]) == sid then redis.call('DEL', P .. 'pr:' .. p[4]) end
  count = count + redis.call('DEL', P .. 'p:' .. sid)
  redis.call('ZREM', P .. 'px', sid)
end
for _, sid in ipairs(due(P .. 'rle')) do
  redis.call('ZREM', P .. 'rl', sid)
  redis.call('ZREM', P .. 'rle', sid)
end
return {count, more}
"""
