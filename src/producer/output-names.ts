/**
 * OUTPUT_NAME at enqueue: every line's output name is rendered (with stand-ins for what only the result tells:
 * `{ext}`, `{width}`, `{height}`) and refused with the reason when it uses an unknown field, an empty column or
 * would be an empty or too long name. When the template can give two images one name (it has no `{jobId}`), the
 * names are claimed in Redis per batch (`<prefix>:batch:<id>:names`, kept as long as the batch): a line whose name
 * another image of the batch already has, in this input or an earlier enqueue, is refused with that image's line.
 * Names are compared case-folded and with the unknown fields taken as equal, the cautious reading: two lines that
 * differ only in `{width}` may still get the same size.
 */
import type { Redis } from 'ioredis';
import type { Keys } from '../queue/names.js';
import { runScript } from '../results/scripts.js';
import { collisionKey, printable, renderName, type NameTemplate } from '../storage/name-template.js';
import type { ValidImage } from './validate.js';

export type NameCheck = { ok: true; claim: string | null } | { ok: false; reason: string };

/** Checks one image's name; `claim` is the name to reserve (null when the template cannot collide). */
export function checkOutputName(template: NameTemplate, batchId: string, image: ValidImage & { jobId: string }): NameCheck {
  const rendered = renderName(template, { ...image, batchId }, { placeholders: true });
  if (!rendered.ok) return rendered;
  return { ok: true, claim: template.canCollide ? rendered.name : null };
}

/**
 * KEYS: names hash. ARGV: retentionMs, then (collision key, jobId, line) triples.
 * Returns, per triple, '' when the name is this image's, else the owner's `jobId line`.
 */
const CLAIM_NAMES = `
local out = {}
for i = 2, #ARGV, 3 do
  local owner = ARGV[i + 1] .. ' ' .. ARGV[i + 2]
  if redis.call('HSETNX', KEYS[1], ARGV[i], owner) == 1 then
    out[#out + 1] = ''
  else
    local current = redis.call('HGET', KEYS[1], ARGV[i])
    if string.sub(current, 1, #ARGV[i + 1] + 1) == ARGV[i + 1] .. ' ' then out[#out + 1] = '' else out[#out + 1] = current end
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return out
`;

export interface NameClaim {
  jobId: string;
  line: number;
  name: string;
}

/**
 * Reserves names in a batch, in order. Returns, per claim, null when it is this image's, or why it is refused.
 */
export async function claimOutputNames(
  redis: Redis,
  keys: Keys,
  batchId: string,
  retentionMs: number,
  claims: readonly NameClaim[],
): Promise<(string | null)[]> {
  if (claims.length === 0) return [];
  const args: (string | number)[] = [retentionMs];
  for (const c of claims) args.push(collisionKey(c.name), c.jobId, c.line);
  const answers = (await runScript(redis, CLAIM_NAMES, [keys.outputNames(batchId)], args)) as string[];
  return claims.map((c, i) => {
    const owner = answers[i] ?? '';
    if (owner === '') return null;
    const line = owner.split(' ')[1];
    return `output name "${printable(c.name)}" is also line ${line}'s (OUTPUT_NAME gives two images one name; add {jobId} or {line}, or a column that tells them apart)`;
  });
}
