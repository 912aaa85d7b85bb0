/**
 * Queries over one batch's records through its index (index-lua.ts): filter by state, failCode or failure group,
 * prefix search over the taskId, the input's file name and meta values, sort by line or finish time, one page
 * at a time. Each query is one Lua script: a page costs O(log N + page) on an unfiltered or state-filtered view,
 * and O(size of the failure set) or O(matches of the search, at most MAX_SEARCH_MATCHES) otherwise, never a scan
 * of the batch. `snapshotQuery` keeps a filtered set in a temporary key for an exact export or retry of it.
 */
import { randomBytes } from 'node:crypto';
import { STATES, TERMINAL_STATES, parseRecord, type RecordState, type ResultRecord } from './record.js';
import { FAIL_CODE_LUA, INDEX_LUA } from './index-lua.js';
import { runScript } from './scripts.js';
import type { ResultStore } from './store.js';

/** Search matches a query looks at; a search matching more says so (`capped`) and shows the first ones. */
export const MAX_SEARCH_MATCHES = 10_000;
/** Largest page. */
export const MAX_PAGE = 500;
/** How long a snapshot (export or retry of a filtered set) lives if its reader dies, ms. */
export const SNAPSHOT_TTL_MS = 10 * 60_000;

export const SORTS = ['line', 'finished'] as const;
export type Sort = (typeof SORTS)[number];

export interface RecordQuery {
  /** Only images in this state. */
  state?: RecordState | undefined;
  /** Only `failed`/`timed_out` images with this failCode (`timed_out` for deadline passes without one). */
  failCode?: string | undefined;
  /** Only the images of this failure group (`failureGroups()` ids). */
  group?: string | undefined;
  /**
   * Case-insensitive prefix of the taskId, the input's file name or a meta value. Text with a `/` is taken
   * as (part of) an input URL or path: its file name is searched, and the input must contain the whole text.
   */
  search?: string | undefined;
  /** `line` (input order) or `finished` (completion time; unfinished images are left out). @defaultValue `'line'` */
  sort?: Sort | undefined;
  /** @defaultValue `false` (ascending) */
  desc?: boolean | undefined;
}

export interface QueryPage {
  /** Images matching the query. */
  total: number;
  /** True when the search matched more than MAX_SEARCH_MATCHES index terms (only the first were looked at). */
  capped: boolean;
  offset: number;
  records: ResultRecord[];
}

/** A query that cannot run (a search with no file name). */
export class QueryError extends Error {
  override readonly name = 'QueryError';
}

/** The search as the index needs it: a lower-case prefix, and the text the input must contain (for URL searches). */
export function searchTerms(search: string | undefined): { prefix: string; contains: string } | null {
  const text = (search ?? '').trim().toLowerCase();
  if (text === '') return null;
  if (!text.includes('/') && !text.includes('\\')) return { prefix: text.slice(0, 64), contains: '' };
  const name = text.replace(/[?#].*$/, '').split(/[/\\]/).pop() ?? '';
  if (name === '') {
    throw new QueryError(
      `search "${search}": a URL or path must end with a file name (search matches the start of file names, task ids and meta values)`,
    );
  }
  return { prefix: name.slice(0, 64), contains: text };
}

/**
 * KEYS: records. ARGV: ix base, (unused), sort (line|fin), state, failCode, group, prefix, contains, offset, limit, desc (1|0),
 * max matches, temp suffix, snapshot TTL (0 = none), search cursor (snapshot only: the last term a previous call
 * looked at, '' for the first call). Returns { total, capped, snapshot key|'', ids..., jsons... }; with a snapshot,
 * { total so far, capped, snapshot key, next cursor|'' }: a capped search adds its first max matches to the snapshot
 * (kept under the same temp suffix across calls) and names where the next call goes on.
 */
const QUERY = `
${FAIL_CODE_LUA}
local IX, REC = ARGV[1], KEYS[1]
local sort, state, failCode, group = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local prefix, contains = ARGV[7], ARGV[8]
local offset, limit, desc, maxMatches = tonumber(ARGV[9]), tonumber(ARGV[10]), ARGV[11] == '1', tonumber(ARGV[12])
local TMP = IX .. 'tmp:' .. ARGV[13]
local keep = tonumber(ARGV[14])
local after = ARGV[15] or ''
local nextCursor = ''
local temps = {}
local cur = IX .. sort .. ':' .. (state ~= '' and state or 'all')
local empty = false
local capped = 0
local groups = {}
-- The 'other' group mixes failCodes (it exists only past MAX_FAILURE_GROUPS kinds of failure): its images of
-- one failCode are found one by one, into a temporary set (line order).
local function otherOfCode(code)
  local kept = TMP .. ':o'
  temps[#temps + 1] = kept
  local members = redis.call('ZRANGE', IX .. 'g:other', 0, -1, 'WITHSCORES')
  for i = 1, #members, 2 do
    local json = redis.call('HGET', REC, members[i])
    if json and ixCode(cjson.decode(json)) == code then redis.call('ZADD', kept, members[i + 1], members[i]) end
  end
  return kept
end
if group ~= '' then
  -- A group and a failCode both narrow: a group of another failCode leaves nothing.
  local entry = failCode ~= '' and redis.call('HGET', IX .. 'grp', group)
  if entry and group == 'other' then
    groups[1] = otherOfCode(failCode)
  elseif entry and cjson.decode(entry)[1] ~= failCode then
    empty = true
  else
    groups[1] = IX .. 'g:' .. group
  end
elseif failCode ~= '' then
  local flat = redis.call('HGETALL', IX .. 'grp')
  for i = 1, #flat, 2 do
    if flat[i] == 'other' then groups[#groups + 1] = otherOfCode(failCode)
    elseif cjson.decode(flat[i + 1])[1] == failCode then groups[#groups + 1] = IX .. 'g:' .. flat[i] end
  end
  if #groups == 0 then empty = true end
end
if not empty and #groups > 0 then
  local g = groups[1]
  if #groups > 1 then
    g = TMP .. ':u'
    temps[#temps + 1] = g
    redis.call('ZUNIONSTORE', g, #groups, unpack(groups))
  end
  if state == '' and sort == 'line' then
    -- A failure set is already ordered by line and holds only failed images: no intersection needed.
    cur = g
  else
    local out = TMP .. ':f'
    temps[#temps + 1] = out
    redis.call('ZINTERSTORE', out, 2, cur, g, 'WEIGHTS', 1, 0)
    cur = out
  end
end
if not empty and prefix ~= '' then
  local from = '[' .. prefix
  if after ~= '' then from = '(' .. after end
  local terms = redis.call('ZRANGEBYLEX', IX .. 'q', from, '[' .. prefix .. '\\255', 'LIMIT', 0, maxMatches + 1)
  if #terms > maxMatches then
    capped = 1
    terms[#terms] = nil
    nextCursor = terms[#terms]
  end
  local out = TMP .. ':s'
  if keep > 0 then out = TMP .. ':snap' else temps[#temps + 1] = out end
  local seen = {}
  for _, t in ipairs(terms) do
    local id = string.match(t, '%z(.*)$')
    if id and not seen[id] then
      seen[id] = true
      local score = redis.call('ZSCORE', cur, id)
      if score then
        local ok = true
        if contains ~= '' then
          local json = redis.call('HGET', REC, id)
          ok = json and string.find(string.lower(cjson.decode(json)['input'] or ''), contains, 1, true) ~= nil
        end
        if ok then redis.call('ZADD', out, score, id) end
      end
    end
  end
  cur = out
end
local total, ids, snapshot = 0, {}, ''
if not empty then
  total = redis.call('ZCARD', cur)
  if keep > 0 then
    snapshot = TMP .. ':snap'
    if cur ~= snapshot then redis.call('ZUNIONSTORE', snapshot, 1, cur) end
    redis.call('PEXPIRE', snapshot, keep)
    total = redis.call('ZCARD', snapshot)
  elseif limit > 0 then
    if desc then ids = redis.call('ZREVRANGE', cur, offset, offset + limit - 1)
    else ids = redis.call('ZRANGE', cur, offset, offset + limit - 1) end
  end
end
for _, k in ipairs(temps) do redis.call('DEL', k) end
local out = { total, capped, snapshot }
if keep > 0 then out[4] = nextCursor end
if #ids > 0 then
  local jsons = redis.call('HMGET', REC, unpack(ids))
  for i, id in ipairs(ids) do
    out[#out + 1] = id
    out[#out + 1] = jsons[i] or ''
  end
end
return out
`;

/** KEYS: records, summary. ARGV: ix base, retention, then jobIds. Indexes records the index lacks. */
const REINDEX = `
local IX = ARGV[1]
local TTL = ARGV[2]
${INDEX_LUA}
local n = 0
for i = 3, #ARGV do
  if not redis.call('ZSCORE', IX .. 'line:all', ARGV[i]) then
    local json = redis.call('HGET', KEYS[1], ARGV[i])
    if json then
      ixApply(ARGV[i], nil, cjson.decode(json), nil)
      n = n + 1
    end
  end
end
return n
`;

function checkQuery(q: RecordQuery): void {
  if (q.state !== undefined && !STATES.includes(q.state)) throw new QueryError(`state "${String(q.state)}" must be one of ${STATES.join(', ')}`);
  if (q.sort !== undefined && !SORTS.includes(q.sort)) throw new QueryError(`sort "${String(q.sort)}" must be line or finished`);
  if (q.sort === 'finished' && q.state !== undefined && !TERMINAL_STATES.includes(q.state)) {
    throw new QueryError(`sort "finished" lists finished images only; "${q.state}" images have no finish time`);
  }
}

async function run(
  store: ResultStore,
  batchId: string,
  q: RecordQuery,
  offset: number,
  limit: number,
  keepMs: number,
  snapshotAt: { suffix: string; cursor: string } | null = null,
) {
  checkQuery(q);
  const terms = searchTerms(q.search);
  const raw = (await runScript(store.redis, QUERY, [store.keys.records(batchId)], [
    store.keys.index(batchId),
    '',
    q.sort === 'finished' ? 'fin' : 'line',
    q.state ?? '',
    q.failCode ?? '',
    q.group ?? '',
    terms?.prefix ?? '',
    terms?.contains ?? '',
    offset,
    limit,
    q.desc ? '1' : '0',
    MAX_SEARCH_MATCHES,
    snapshotAt?.suffix ?? randomBytes(6).toString('hex'),
    keepMs,
    snapshotAt?.cursor ?? '',
  ])) as (string | number)[];
  const base = { total: Number(raw[0]), capped: Number(raw[1]) === 1, snapshot: String(raw[2] ?? '') };
  if (keepMs > 0) return { ...base, cursor: String(raw[3] ?? ''), records: [] as ResultRecord[] };
  const records: ResultRecord[] = [];
  for (let i = 3; i + 1 < raw.length; i += 2) if (raw[i + 1]) records.push(parseRecord(String(raw[i + 1]), String(raw[i]), batchId));
  return { ...base, cursor: '', records };
}

/**
 * One page of the batch's records matching `q`. Throws `QueryError` for a bad state, sort or search.
 * @param offset 0-based. @param limit at most MAX_PAGE.
 */
export async function queryRecords(store: ResultStore, batchId: string, q: RecordQuery, offset = 0, limit = 50): Promise<QueryPage> {
  const page = Math.max(0, Math.min(MAX_PAGE, Math.floor(limit)));
  const from = Math.max(0, Math.floor(offset));
  const { total, capped, records } = await run(store, batchId, q, from, page, 0);
  return { total, capped, offset: from, records };
}

/**
 * Every record matching `q`, in the query's order, as the set stood when the iteration started (a snapshot in a
 * temporary key, deleted at the end, or after SNAPSHOT_TTL_MS if the reader dies). Records are read in pages.
 * Never capped: a search matching more than MAX_SEARCH_MATCHES terms (where a page says `capped`) is snapshot in
 * chunks of MAX_SEARCH_MATCHES terms, one script call each (Redis is never blocked for more than one chunk), so an
 * export or retry of a filtered set holds every match.
 */
export async function* queryAll(store: ResultStore, batchId: string, q: RecordQuery, pageSize = 500): AsyncGenerator<ResultRecord> {
  const suffix = randomBytes(6).toString('hex');
  const first = await run(store, batchId, q, 0, 0, SNAPSHOT_TTL_MS, { suffix, cursor: '' });
  const snapshot = first.snapshot;
  let { total, cursor } = first;
  try {
    while (cursor !== '') ({ total, cursor } = await run(store, batchId, q, 0, 0, SNAPSHOT_TTL_MS, { suffix, cursor }));
    if (snapshot === '') return;
    for (let from = 0; from < total; from += pageSize) {
      const ids = q.desc
        ? await store.redis.zrevrange(snapshot, from, from + pageSize - 1)
        : await store.redis.zrange(snapshot, String(from), String(from + pageSize - 1));
      if (ids.length === 0) break;
      const jsons = await store.redis.hmget(store.keys.records(batchId), ...ids);
      for (const [k, json] of jsons.entries()) if (json) yield parseRecord(json, ids[k] as string, batchId);
    }
  } finally {
    if (snapshot !== '') await store.redis.del(snapshot);
  }
}

export interface FailureGroup {
  id: string;
  failCode: string;
  /** The reason pattern: failMsg with numbers, sizes, byte counts, URLs, paths, quoted strings and ids replaced by placeholders (`<n>`, `<w>x<h>`, `<size>`, `<url>`, `<path>`, `"<text>"`, `<id>`). */
  reason: string;
  /** One real reason of the group (the first seen), for display; equals `reason` for groups indexed before patterns. */
  example: string;
  count: number;
}

/** The batch's failures grouped by failCode and reason pattern, largest first (groups now empty are left out). */
export async function failureGroups(store: ResultStore, batchId: string): Promise<FailureGroup[]> {
  const ix = store.keys.index(batchId);
  const groups = await store.redis.hgetall(`${ix}grp`);
  const ids = Object.keys(groups);
  if (ids.length === 0) return [];
  const pipeline = store.redis.pipeline();
  for (const id of ids) pipeline.zcard(`${ix}g:${id}`);
  const counts = (await pipeline.exec()) ?? [];
  return ids
    .map((id, i) => {
      const [failCode, reason, example] = JSON.parse(groups[id] as string) as [string, string, string?];
      return { id, failCode, reason, example: example ?? reason, count: Number(counts[i]?.[1] ?? 0) };
    })
    .filter((g) => g.count > 0)
    .sort((a, b) => b.count - a.count || a.failCode.localeCompare(b.failCode));
}

/** Images that reached a terminal state per Unix minute (minute = floor(ms / 60000)), oldest first. */
export async function finishedPerMinute(store: ResultStore, batchId: string): Promise<{ minute: number; count: number }[]> {
  const h = await store.redis.hgetall(`${store.keys.index(batchId)}min`);
  return Object.entries(h)
    .map(([m, c]) => ({ minute: Number(m), count: Number(c) }))
    .sort((a, b) => a.minute - b.minute);
}

/**
 * Indexes the records of a batch written before the index existed (or whose index was lost): when the index holds
 * fewer images than the batch has records (HLEN, O(1)), the records are read once (HSCAN pages) and the missing
 * ones indexed.
 * @returns how many records were indexed (0 when the index was complete).
 */
export async function ensureIndex(store: ResultStore, batchId: string): Promise<number> {
  const [indexed, total] = await Promise.all([
    store.redis.zcard(`${store.keys.index(batchId)}line:all`),
    store.redis.hlen(store.keys.records(batchId)),
  ]);
  if (indexed >= total) return 0;
  let added = 0;
  let cursor = '0';
  do {
    const [next, flat] = await store.redis.hscan(store.keys.records(batchId), cursor, 'COUNT', 500);
    cursor = next;
    const ids = flat.filter((_, i) => i % 2 === 0);
    if (ids.length > 0) {
      added += Number(
        await runScript(store.redis, REINDEX, [store.keys.records(batchId), store.keys.batch(batchId)], [store.keys.index(batchId), String(store.retentionMs), ...ids]),
      );
    }
  } while (cursor !== '0');
  return added;
}
