/**
 * The send gate of createTask. BullMQ's limiter spaces the *starts* of submit jobs; the pre-flight and the upload
 * then take a variable time before createTask is sent, which would let sends bunch up and break kie.ai's sliding
 * window even though the starts were spaced. So, after its preparation, every image takes the next send slot from
 * one Redis key shared by all workers: slots are `sendSpacingMs(KIE_CREATE_LIMIT)` apart (the limiter's spacing),
 * times come from Redis' clock (no skew between machines), and the wait is usually zero when nothing was slow.
 */
import type { Runtime } from '../runtime.js';
import { runScript } from '../results/scripts.js';
import { sendSpacingMs } from '../queue/limits.js';

/** KEYS: next-slot key. ARGV: spacing ms. Returns { slot time (Redis clock, ms), wait in ms } as strings. */
const TAKE_SLOT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local spacing = tonumber(ARGV[1])
local nextFree = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(now, nextFree)
redis.call('SET', KEYS[1], tostring(slot + spacing), 'PX', math.ceil(spacing * 4) + 1000)
return { tostring(slot), tostring(slot - now) }
`;

/** Reserves the next createTask send slot: when it is (Redis' clock, ms) and how long from now. */
export async function takeSendSlot(rt: Runtime): Promise<{ slotAt: number; waitMs: number }> {
  const spacing = sendSpacingMs(rt.config.createLimit);
  const [slotAt, waitMs] = (await runScript(rt.redis, TAKE_SLOT, [rt.store.keys.createGate], [spacing])) as [string, string];
  return { slotAt: Number(slotAt), waitMs: Number(waitMs) };
}

/** Reserves the next createTask send slot and waits for it. Resolves with the wait in ms. */
export async function waitForSendSlot(rt: Runtime): Promise<number> {
  const { waitMs } = await takeSendSlot(rt);
  if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
  return waitMs;
}
