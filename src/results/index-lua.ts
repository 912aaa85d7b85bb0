/**
 * The batch index, kept by the record scripts (scripts.ts) in the same atomic step as the record, so the batch page
 * can filter, search, sort and page 100,000 records without reading them all. Keys under
 * `<prefix>:batch:<id>:ix:` (the `ix` base):
 *
 * | key | type | members (score) |
 * |---|---|---|
 * | `line:all`, `line:<state>` | zset | jobId (line of the input, 0 when none) |
 * | `fin:all`, `fin:<terminal state>` | zset | jobId of finished images (completedAt, else updatedAt, ms) |
 * | `grp` | hash | failure group id → JSON `[failCode, pattern, example reason]` (at most MAX_FAILURE_GROUPS, then `other`) |
 * | `g:<group id>` | zset | jobId of `failed`/`timed_out` images of that failCode and reason pattern (line) |
 *
 * A group is a failCode and the reason's *pattern*: the reason (failMsg) with its variable parts replaced by
 * placeholders (URLs `<url>`, quoted strings `"<text>"`, paths `<path>`, hex ids and UUIDs `<id>`, sizes `600x400`
 * → `<w>x<h>`, byte counts `1067 bytes` / `2.5 MB` → `<size>`, other numbers `<n>`), so one kind of failure is one
 * group; the first reason seen is kept as its example. Batches indexed before patterns existed keep their
 * exact-reason groups (an image still leaves its old group when it moves); new failures join pattern groups.
 * | `q` | zset | `<term>\0<jobId>` (0), terms: the taskId, the input's file name and each meta value, lower case, 64 characters at most: prefix search by ZRANGEBYLEX |
 * | `min` | hash | Unix minute → images that reached a terminal state in it (at most MAX_MINUTES fields) |
 *
 * Every key written gets the batch's retention; every index key's expiry is refreshed at least once a minute
 * (`ixAt` in the summary), so the index lives exactly as long as the records. Memory: about 4 sorted-set entries
 * and 2-3 search terms per image (about 0.9 KB for an image with one meta value, beside a ~0.4 KB record as stored), bounded by the batch size.
 */
import { STATES, TERMINAL_STATES } from './record.js';

/** Failure groups (failCode + reason pattern) an index keeps apart; more fall into one `other` group. */
export const MAX_FAILURE_GROUPS = 50;
/** Longest reason (failMsg) a failure group keeps, in characters. */
export const MAX_REASON_CHARS = 160;
/** Longest search term kept per value, in characters (prefix search needs only the start). */
export const MAX_TERM_CHARS = 64;
/** Minute buckets of finished images kept per batch (3 days); older ones are dropped as new ones come. */
export const MAX_MINUTES = 4320;

/**
 * The code a failure is grouped and filtered by: its failCode, else its state (`timed_out` without one). Lua for the
 * index scripts and the query (batch-query.ts), which defines `ixStr` and `ixCode(rec)`.
 */
export const FAIL_CODE_LUA = `
local function ixStr(v) if type(v) == 'string' then return v end return nil end
local function ixCode(rec) return ixStr(rec['failCode']) or rec['state'] end
`;

/**
 * Lua functions shared by the scripts. They expect `IX` (the index base) and `TTL` (retention, ms) set by the
 * script, and define `ixApply(jobId, oldRec|nil, newRec|nil, now|nil)` (`now` nil: a rebuild, no minute counted).
 */
export const INDEX_LUA = `
local IX_TERMINAL = { ${TERMINAL_STATES.map((s) => `${s} = true`).join(', ')} }
local IX_STATES = { ${STATES.map((s) => `'${s}'`).join(', ')} }
${FAIL_CODE_LUA}local function ixHexId(h)
  if #h >= 8 and string.find(h, '%d') and string.find(h, '%a') then return '<id>' end
  return nil
end
local function ixPattern(msg)
  local s = ' ' .. msg .. ' '
  s = string.gsub(s, '%a[%w+.-]*://[^%s"\\'<>]+', '<url>')
  s = string.gsub(s, '"[^"]*"', '"<text>"')
  s = string.gsub(s, '([%s%(%[:=,])\\'[^\\']*\\'', '%1\\'<text>\\'')
  s = string.gsub(s, '([%s%(%[:=,])%a:[/\\\\][^%s"\\'<>,;:)]*', '%1<path>')
  s = string.gsub(s, '([%s%(%[:=,])~?%.?%.?[/\\\\][^%s"\\'<>,;:)]*', '%1<path>')
  s = string.gsub(s, '[%w._-]+[/\\\\][%w._-]+[/\\\\][^%s"\\'<>,;:)]*', '<path>')
  s = string.gsub(s, '%x+%-%x+%-%x+%-%x+%-%x+', '<id>')
  s = string.gsub(s, '%f[%w]%x+%f[%W]', ixHexId)
  s = string.gsub(s, '%d+%s*[xX]%s*%d+', '<w>x<h>')
  s = string.gsub(s, '%d+%s*\\195\\151%s*%d+', '<w>x<h>')
  s = string.gsub(s, '%d+', '<n>')
  s = string.gsub(s, '<n>[.,]<n>', '<n>')
  s = string.gsub(s, '<n>[.,]<n>', '<n>')
  s = string.gsub(s, '<n>%s*[kKmMgGtT]?i?[bB]%f[%W]', '<size>')
  s = string.gsub(s, '<n>%s*bytes?%f[%W]', '<size>')
  s = string.gsub(s, '%s+', ' ')
  return string.sub(string.sub(s, 2, -2), 1, ${MAX_REASON_CHARS})
end
local function ixGroupId(code, text) return string.sub(redis.sha1hex(code .. '\\n' .. text), 1, 12) end
local function ixGroup(rec)
  local code = ixCode(rec)
  local msg = ixStr(rec['failMsg']) or ''
  local pattern = ixPattern(msg)
  local gid = ixGroupId(code, pattern)
  if redis.call('HEXISTS', IX .. 'grp', gid) == 0 then
    if redis.call('HLEN', IX .. 'grp') >= ${MAX_FAILURE_GROUPS} then
      gid = 'other'
      redis.call('HSETNX', IX .. 'grp', gid, cjson.encode({ 'other', 'more kinds of failure than the page keeps apart', '' }))
    else
      redis.call('HSET', IX .. 'grp', gid, cjson.encode({ code, pattern, string.sub(msg, 1, ${MAX_REASON_CHARS}) }))
    end
  end
  return gid
end
-- Group keys an image of this record may sit in besides its current one: 'other', and the group of the exact reason
-- that batches indexed before reasons were normalised used (so an image leaves its old group when it moves on).
local function ixOldGroupKeys(rec)
  local code = ixCode(rec)
  return { IX .. 'g:other', IX .. 'g:' .. ixGroupId(code, string.sub(ixStr(rec['failMsg']) or '', 1, ${MAX_REASON_CHARS})) }
end
local function ixMemberships(jobId, rec)
  local z = {}
  local terms = {}
  if rec == nil then return z, terms end
  local line = tonumber(rec['line']) or 0
  local st = rec['state']
  z[IX .. 'line:all'] = line
  z[IX .. 'line:' .. st] = line
  if IX_TERMINAL[st] then
    local fin = tonumber(rec['completedAt']) or tonumber(rec['updatedAt']) or 0
    z[IX .. 'fin:all'] = fin
    z[IX .. 'fin:' .. st] = fin
  end
  if st == 'failed' or st == 'timed_out' then z[IX .. 'g:' .. ixGroup(rec)] = line end
  local function term(v)
    if v ~= nil and v ~= '' then terms[string.lower(string.sub(v, 1, ${MAX_TERM_CHARS})) .. '\\0' .. jobId] = true end
  end
  term(ixStr(rec['taskId']))
  local input = ixStr(rec['input'])
  if input then term(string.match(string.gsub(input, '[?#].*$', ''), '([^/\\\\]*)$')) end
  if type(rec['meta']) == 'table' then
    for _, v in pairs(rec['meta']) do term(ixStr(v)) end
  end
  return z, terms
end
local function ixTouch(key) redis.call('PEXPIRE', key, TTL) end
local function ixRefreshAll(summaryKey, now)
  local last = tonumber(redis.call('HGET', summaryKey, 'ixAt')) or 0
  if now - last < 60000 then return end
  redis.call('HSET', summaryKey, 'ixAt', now)
  ixTouch(IX .. 'line:all') ixTouch(IX .. 'fin:all') ixTouch(IX .. 'grp') ixTouch(IX .. 'q') ixTouch(IX .. 'min')
  for _, s in ipairs(IX_STATES) do ixTouch(IX .. 'line:' .. s) ixTouch(IX .. 'fin:' .. s) end
  for _, gid in ipairs(redis.call('HKEYS', IX .. 'grp')) do ixTouch(IX .. 'g:' .. gid) end
end
local function ixApply(jobId, oldRec, newRec, now)
  local oz, ot = ixMemberships(jobId, oldRec)
  local nz, nt = ixMemberships(jobId, newRec)
  for key, score in pairs(oz) do
    if nz[key] == nil then redis.call('ZREM', key, jobId) end
  end
  if oldRec ~= nil and (oldRec['state'] == 'failed' or oldRec['state'] == 'timed_out') then
    for _, key in ipairs(ixOldGroupKeys(oldRec)) do
      if nz[key] == nil and oz[key] == nil then redis.call('ZREM', key, jobId) end
    end
  end
  for key, score in pairs(nz) do
    if oz[key] ~= score or string.sub(key, #IX + 1, #IX + 2) == 'g:' then
      redis.call('ZADD', key, score, jobId)
      ixTouch(key)
    end
  end
  for t in pairs(ot) do
    if not nt[t] then redis.call('ZREM', IX .. 'q', t) end
  end
  local added = false
  for t in pairs(nt) do
    if not ot[t] then
      redis.call('ZADD', IX .. 'q', 0, t)
      added = true
    end
  end
  if added then ixTouch(IX .. 'q') end
  if now ~= nil and newRec ~= nil and IX_TERMINAL[newRec['state']] and (oldRec == nil or not IX_TERMINAL[oldRec['state']]) then
    local minute = math.floor(now / 60000)
    if redis.call('HINCRBY', IX .. 'min', minute, 1) == 1 then
      ixTouch(IX .. 'min')
      if redis.call('HLEN', IX .. 'min') > ${MAX_MINUTES} then
        for _, m in ipairs(redis.call('HKEYS', IX .. 'min')) do
          if tonumber(m) <= minute - ${MAX_MINUTES} then redis.call('HDEL', IX .. 'min', m) end
        end
      end
    end
  end
end
`;
