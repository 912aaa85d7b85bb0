/**
 * Lua scripts that keep a batch's records and its summary counts in step atomically, whichever process writes.
 * Records are JSON in one hash per batch; the summary hash holds a count per state, credits and times.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { INDEX_LUA } from './index-lua.js';
import { COUNTER_FIELDS, TERMINAL_STATES } from './record.js';

const TERMINAL = `local terminal = { ${TERMINAL_STATES.map((s) => `${s} = true`).join(', ')} }`;
const COUNTERS = `local counters = { ${COUNTER_FIELDS.map((f) => `${f} = true`).join(', ')} }`;

/**
 * The batch-completion check shared by both scripts (summary key, the finalizer's due set, batch id, now).
 * Complete = no image waiting, held, submitting or polling and no download
 * pending: the batch is put in the due set for the finalizer (src/batch/finalizer.ts). Not complete but marked
 * finalized = re-opened (a retry, a late image): the mark goes and the epoch moves on, so it is finalized again.
 */
const COMPLETION = `
local function checkCompletion(summary, due, batchId, now)
  local c = redis.call('HMGET', summary, 'waiting', 'held', 'submitting', 'polling', 'downloadsPending', 'finalizedAt', 'total')
  local open = 0
  for i = 1, 5 do open = open + math.max(0, tonumber(c[i]) or 0) end
  if open == 0 and (tonumber(c[7]) or 0) > 0 then
    if not c[6] then redis.call('ZADD', due, 'NX', now, batchId) end
  elseif c[6] then
    redis.call('HDEL', summary, 'finalizedAt', 'resultsAt')
    redis.call('HINCRBY', summary, 'epoch', 1)
    redis.call('ZREM', due, batchId)
  end
end
`;

/**
 * KEYS: records, summary, batches, finalizer due set, index base (index-lua.ts; not itself a key). ARGV: now, retentionMs, batchId, initial state
 * (\`waiting\` or \`held\`, as in the records' JSON), then jobId/json pairs. Returns one flag per pair:
 * 1 created, 2 existed and still waiting, 0 existed in another state. New images re-open a finished batch.
 */
export const CREATE_RECORDS = `
${COMPLETION}
local IX = KEYS[5]
local TTL = ARGV[2]
${INDEX_LUA}
local now = ARGV[1]
local initial = ARGV[4]
local created = 0
local flags = {}
for i = 5, #ARGV, 2 do
  if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) == 1 then
    created = created + 1
    flags[#flags + 1] = 1
    ixApply(ARGV[i], nil, cjson.decode(ARGV[i + 1]), tonumber(now))
  else
    local rec = cjson.decode(redis.call('HGET', KEYS[1], ARGV[i]))
    flags[#flags + 1] = (rec['state'] == 'waiting') and 2 or 0
  end
end
if created > 0 then
  redis.call('HINCRBY', KEYS[2], 'total', created)
  redis.call('HINCRBY', KEYS[2], initial, created)
  redis.call('HSET', KEYS[2], 'updatedAt', now)
end
redis.call('HSETNX', KEYS[2], 'createdAt', now)
if created > 0 then checkCompletion(KEYS[2], KEYS[4], ARGV[3], now) end
redis.call('ZADD', KEYS[3], 'NX', now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
ixRefreshAll(KEYS[2], tonumber(now))
return flags
`;

/**
 * KEYS: records, summary, meta keys, finalizer due set, index base. ARGV: jobId, patch JSON, now, retentionMs,
 * allowed-from states (comma list, '' = any), batchId.
 * The patch's fields replace the record's; its "$inc" object adds to numeric fields.
 * Returns { status ('ok' | 'missing' | 'refused'), previous state, record JSON }.
 */
export const TRANSITION = `
${TERMINAL}
${COUNTERS}
${COMPLETION}
local IX = KEYS[5]
local TTL = ARGV[4]
${INDEX_LUA}
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old then return { 'missing', '', '' } end
local rec = cjson.decode(old)
local before = cjson.decode(old)
local from = rec['state']
if ARGV[5] ~= '' then
  local allowed = false
  for s in string.gmatch(ARGV[5], '[^,]+') do
    if s == from then allowed = true end
  end
  if not allowed then return { 'refused', from, old } end
end
local oldCredits = tonumber(rec['creditsConsumed']) or 0
local oldAmbiguous = tonumber(rec['ambiguousSubmits']) or 0
local oldPending = rec['download'] == 'pending'
local oldFailedDl = rec['download'] == 'failed'
local patch = cjson.decode(ARGV[2])
local inc = patch['$inc']
patch['$inc'] = nil
for k, v in pairs(patch) do rec[k] = v end
if type(inc) == 'table' then
  for k, v in pairs(inc) do rec[k] = (tonumber(rec[k]) or 0) + v end
end
rec['updatedAt'] = tonumber(ARGV[3])
-- Stored without what the key says and the fields that have no value (record.ts storedRecord): a patch's null removes the field.
rec['jobId'] = nil
rec['batchId'] = nil
for k, v in pairs(rec) do
  if v == cjson.null or (type(v) == 'table' and next(v) == nil) or (v == 0 and counters[k]) then rec[k] = nil end
end
local to = rec['state']
if to ~= from then
  redis.call('HINCRBY', KEYS[2], from, -1)
  redis.call('HINCRBY', KEYS[2], to, 1)
  if to == 'submitting' then redis.call('HSETNX', KEYS[2], 'startedAt', ARGV[3]) end
  if terminal[to] then redis.call('HSET', KEYS[2], 'lastDoneAt', ARGV[3]) end
end
local credits = tonumber(rec['creditsConsumed']) or 0
if credits ~= oldCredits then redis.call('HINCRBYFLOAT', KEYS[2], 'creditsConsumed', credits - oldCredits) end
local ambiguous = tonumber(rec['ambiguousSubmits']) or 0
if ambiguous ~= oldAmbiguous then redis.call('HINCRBY', KEYS[2], 'ambiguousSubmits', ambiguous - oldAmbiguous) end
local pending = rec['download'] == 'pending'
if pending ~= oldPending then redis.call('HINCRBY', KEYS[2], 'downloadsPending', pending and 1 or -1) end
local failedDl = rec['download'] == 'failed'
if failedDl ~= oldFailedDl then redis.call('HINCRBY', KEYS[2], 'downloadsFailed', failedDl and 1 or -1) end
redis.call('HSET', KEYS[2], 'updatedAt', ARGV[3])
if to ~= from or pending ~= oldPending then checkCompletion(KEYS[2], KEYS[4], ARGV[6], ARGV[3]) end
local encoded = cjson.encode(rec)
redis.call('HSET', KEYS[1], ARGV[1], encoded)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('PEXPIRE', KEYS[3], ARGV[4])
ixApply(ARGV[1], before, rec, tonumber(ARGV[3]))
ixRefreshAll(KEYS[2], tonumber(ARGV[3]))
return { 'ok', from, encoded }
`;

const shas = new Map<string, string>();

/** Runs a script by its SHA, loading it on NOSCRIPT (after a Redis restart or on a new node). */
export async function runScript(redis: Redis, script: string, keys: string[], args: (string | number)[]): Promise<unknown> {
  let sha = shas.get(script);
  if (!sha) {
    sha = createHash('sha1').update(script).digest('hex');
    shas.set(script, sha);
  }
  try {
    return await redis.evalsha(sha, keys.length, ...keys, ...args);
  } catch (e) {
    if (!String((e as Error).message).includes('NOSCRIPT')) throw e;
    return redis.eval(script, keys.length, ...keys, ...args);
  }
}
