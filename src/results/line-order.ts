/**
 * Every record of a batch in input order (by `line`, then job id for equal lines), streamed a page at a time from
 * the batch index's `line:all` sorted set (index-lua.ts), for the export. Each page is one Lua call: the rank of the
 * last job id returned (ZRANK), the next `pageSize` ids after it (ZRANGE) and their records (HMGET), so a page
 * costs O(log N + page) and memory holds one page, whatever the batch's size.
 *
 * Consistency, like HSCAN's: an image present for the whole export comes out exactly once (the cursor is the last
 * job id, not a position, so images enqueued meanwhile in front of it shift nothing); one added meanwhile may or
 * may not. Should the cursor's own entry leave the index (its record expired mid-export), the page continues from
 * the position it had.
 */
import { ensureIndex } from './batch-query.js';
import { parseRecord, type ResultRecord } from './record.js';
import { runScript } from './scripts.js';
import type { ResultStore } from './store.js';

/**
 * KEYS: line:all, records. ARGV: last job id ('' to start), position to fall back on, page size.
 * Returns { position of the first id, id1, json1, id2, json2, ... } (json false when the record is gone).
 */
const PAGE = `
local start = tonumber(ARGV[2])
if ARGV[1] ~= '' then
  local r = redis.call('ZRANK', KEYS[1], ARGV[1])
  if r then start = r + 1 end
end
local ids = redis.call('ZRANGE', KEYS[1], start, start + tonumber(ARGV[3]) - 1)
local out = { start }
if #ids == 0 then return out end
local jsons = redis.call('HMGET', KEYS[2], unpack(ids))
for i = 1, #ids do
  out[#out + 1] = ids[i]
  out[#out + 1] = jsons[i]
end
return out
`;

/**
 * Streams the batch's records by line. The index is completed first when it lacks records (a batch written before
 * it existed: one pass over the records, `ensureIndex`).
 * @param pageSize records per Redis call. @defaultValue 500
 */
export async function* recordsInLineOrder(store: ResultStore, batchId: string, pageSize = 500): AsyncGenerator<ResultRecord> {
  await ensureIndex(store, batchId);
  const keys = [`${store.keys.index(batchId)}line:all`, store.keys.records(batchId)];
  let last = '';
  let next = 0;
  for (;;) {
    const raw = (await runScript(store.redis, PAGE, keys, [last, next, pageSize])) as (string | number | null)[];
    const start = Number(raw[0]);
    const count = (raw.length - 1) / 2;
    if (count === 0) return;
    for (let i = 1; i + 1 < raw.length; i += 2) {
      const json = raw[i + 1];
      if (typeof json === 'string') yield parseRecord(json, String(raw[i]), batchId);
    }
    last = String(raw[raw.length - 2]);
    next = start + count;
    if (count < pageSize) return;
  }
}
