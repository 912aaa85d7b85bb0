/**
 * kie.ai's API: createTask, recordInfo, credit and download-url (KIE_API.md). The gate (`gate.ts`) has already
 * checked User-Agent, maintenance and key when a handler runs.
 *
 * createTask, step by step: injected 500/501 (nothing happens) → body checks per model (422, or 500 for a
 * missing `input`) → the create window (429: nothing happens, not counted) → fetch and inspect the image (422)
 * → credits (402) → the task. The window slot is taken when the call arrives, as a gateway limiter would,
 * and given back when a later step refuses the call, so only created tasks count.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { SimContext } from './context.js';
import { fetchLimited, inspectImage, MAX_INPUT_BYTES } from './fetch-input.js';
import { pathOf } from './files.js';
import { answerer, keyOf } from './gate.js';
import { recordInfoData } from './task-view.js';
import { checkImage, priceOf, validateCreateBody } from './validate.js';

/** A download link is valid this long (real ms, scaled). */
const DOWNLOAD_LINK_TTL_MS = 20 * 60_000;

const DAY_MS = 86_400_000;

function utcMidnight(now: number): number {
  return now - (now % DAY_MS);
}

export function registerApiRoutes(app: FastifyInstance, ctx: SimContext): void {
  const answer = answerer(ctx, false);
  /** Tasks created in the current UTC day (the daily cap). */
  const daily = { day: 0, count: 0 };
  /** A 429, with `Retry-After` when the options ask for one. */
  const answer429 = (reply: Parameters<typeof answer>[0]) => {
    const ra = ctx.opts.retryAfter;
    if (ra !== undefined) reply.header('retry-after', typeof ra === 'number' ? String(Math.max(0, Math.round(ra))) : ra);
    return answer(reply, 429);
  };

  app.post('/api/v1/jobs/createTask', async (request, reply) => {
    const key = keyOf(request) as string;
    if (ctx.faults.draw('serverErrorRate')) return answer(reply, 500);
    if (ctx.faults.draw('generationErrorRate')) return answer(reply, 501);
    // The daily cap counts a create when it arrives (concurrent calls cannot slip past it) and gives it back when
    // the call ends without a task.
    const today = utcMidnight(Date.now());
    if (daily.day !== today) Object.assign(daily, { day: today, count: 0 });
    if (ctx.opts.dailyLimit !== null && daily.count >= ctx.opts.dailyLimit) {
      return answer(reply, 433, 'The current number of points used by apiKey has exceeded the daily limit');
    }
    daily.count++;
    let createdOk = false;
    let counted = true;
    const uncount = () => {
      if (counted && daily.day === today) daily.count--;
      counted = false;
    };
    reply.raw.once('finish', () => {
      if (!createdOk) uncount();
    });
    const checked = validateCreateBody(request.body, ctx.opts.topazFactors);
    // The live API answers request validation errors with code 500 (kie-samples 11, 12).
    if (!checked.ok) return answer(reply, ctx.opts.dialect === 'live' && checked.code === 422 ? 500 : checked.code, checked.msg);
    const req = checked.value;
    const slot = ctx.createLimiter.acquire(key, ctx.opts.windowClock());
    if (!slot) {
      ctx.stats.counters.createRejected429++;
      return answer429(reply);
    }
    let created = false;
    try {
      const fetched = await fetchLimited(req.imageUrl, {
        timeoutMs: ctx.opts.fetchTimeoutMs,
        maxBytes: MAX_INPUT_BYTES,
        signal: ctx.stopSignal,
      });
      if (!fetched.ok)
        return answer(reply, 422, `cannot use the input image ${req.imageUrl}: ${fetched.reason}`);
      const facts = ctx.light ? await ctx.light.inspect(fetched.data) : await inspectImage(fetched.data);
      const problem = checkImage(facts, req);
      if (problem || !facts) return answer(reply, 422, problem ?? 'the input is not an image');
      const price = priceOf(req, facts, ctx.opts.prices);
      if (ctx.credits.balance < price) {
        return answer(
          reply,
          402,
          `Credits insufficient: this task costs ${price} credits and ${ctx.credits.balance} remain`,
        );
      }
      ctx.credits.balance -= price;
      try {
        const task = await ctx.tasks.create(req, facts, price, fetched.data);
        created = true;
        createdOk = true;
        ctx.stats.acceptedCreate(req.imageUrl);
        ctx.logger.debug({ taskId: task.taskId, model: req.model, input: req.imageUrl }, 'sim: task created');
        return answer(reply, 200, 'success', { taskId: task.taskId });
      } catch (e) {
        ctx.credits.balance += price;
        throw e;
      }
    } finally {
      if (!created) slot.release();
    }
  });

  app.get<{ Querystring: { taskId?: string } }>('/api/v1/jobs/recordInfo', async (request, reply) => {
    const key = keyOf(request) as string;
    if (ctx.faults.draw('serverErrorRate')) return answer(reply, 500);
    if (!ctx.queryLimiter.acquire(key, ctx.opts.windowClock())) {
      ctx.stats.counters.queries429++;
      return answer429(reply);
    }
    ctx.stats.counters.queries++;
    const taskId = request.query.taskId;
    if (typeof taskId !== 'string' || taskId.trim() === '') return answer(reply, 422, 'taskId is required');
    const task = ctx.tasks.get(taskId.trim());
    const now = Date.now();
    // Live: a new task is not visible for a moment (kie-samples 28).
    if (!task || now - task.createdAt < ctx.opts.visibilityDelayMs) return answer(reply, 422, 'recordInfo is null', null);
    return answer(reply, 200, 'success', recordInfoData(task, now, ctx.opts));
  });

  app.get('/api/v1/chat/credit', async (_request, reply) => {
    ctx.stats.counters.creditChecks++;
    return answer(reply, 200, 'success', ctx.credits.balance);
  });

  app.post('/api/v1/common/download-url', async (request, reply) => {
    const body = request.body as { url?: unknown } | undefined;
    const url = body?.url;
    if (typeof url !== 'string' || url === '') return answer(reply, 422, 'url is required');
    const base = ctx.baseUrl();
    if (!url.startsWith(`${base}/results/`) && !url.startsWith(`${base}/files/`)) {
      return answer(reply, 422, 'url is not a file generated by or uploaded to kie.ai');
    }
    const entry = ctx.files.get(pathOf(url.slice(base.length)));
    if (!entry) return answer(reply, 404, 'the file does not exist or has expired');
    const path = `/dl/${randomBytes(12).toString('hex')}`;
    ctx.files.alias(path, entry, DOWNLOAD_LINK_TTL_MS / ctx.opts.timeScale);
    return answer(reply, 200, 'success', `${base}${path}`);
  });
}
