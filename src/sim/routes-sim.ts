/**
 * The simulator's own endpoints, for tests and demos in other processes (no key needed):
 * `GET /sim/stats`, `GET /sim/tasks`, `POST /sim/control` `{ faults?, credits?, creditDrain?, maintenanceMs?, dailyLimit? }`
 * (creditDrain: credits per simulated second spent elsewhere on the account, 0 stops it)
 * (maintenanceMs in real ms, scaled; faults as `{ "faults": { "truncatedResultRate": 1 } }`) and
 * `POST /sim/reset-stats`. A fault name at the top level is refused with the body to send instead.
 */
import type { FastifyInstance } from 'fastify';
import { statsOf, type SimContext } from './context.js';
import { DEFAULT_FAULTS, type SimFaults } from './options.js';

/** The fields of a `POST /sim/control` body. */
const CONTROL_FIELDS = ['faults', 'credits', 'creditDrain', 'maintenanceMs', 'dailyLimit'];

export interface SimControl {
  faults?: Partial<SimFaults>;
  credits?: number;
  /** Credits per simulated second the account loses to other spending (the slow drain); 0 stops it. */
  creditDrain?: number;
  maintenanceMs?: number;
  /** createTask's daily cap (433 past it); null lifts it. */
  dailyLimit?: number | null;
}

/** Applies a control request; throws a RangeError naming the bad field (nothing changes then). */
export function applyControl(ctx: SimContext, body: unknown): void {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new RangeError('the body must be a JSON object');
  const c = body as Record<string, unknown>;
  for (const key of Object.keys(c)) {
    if (CONTROL_FIELDS.includes(key)) continue;
    if (Object.hasOwn(DEFAULT_FAULTS, key)) {
      const example = JSON.stringify({ faults: { [key]: c[key] } });
      throw new RangeError(`${key} is a fault: send ${example}`);
    }
    throw new RangeError(
      `unknown field "${key}": the body takes ${CONTROL_FIELDS.join(', ')}; faults go inside "faults" ` +
        `(${Object.keys(DEFAULT_FAULTS).join(', ')})`,
    );
  }
  if (c.dailyLimit !== undefined && c.dailyLimit !== null && !(typeof c.dailyLimit === 'number' && Number.isSafeInteger(c.dailyLimit) && c.dailyLimit >= 0)) {
    throw new RangeError('dailyLimit must be a whole number of at least 0, or null');
  }
  if (
    c.credits !== undefined &&
    (typeof c.credits !== 'number' || !Number.isFinite(c.credits) || c.credits < 0)
  ) {
    throw new RangeError('credits must be a number of at least 0');
  }
  if (c.creditDrain !== undefined && (typeof c.creditDrain !== 'number' || !Number.isFinite(c.creditDrain) || c.creditDrain < 0)) {
    throw new RangeError('creditDrain must be a number of at least 0 (credits per simulated second)');
  }
  if (c.maintenanceMs !== undefined && (typeof c.maintenanceMs !== 'number' || !(c.maintenanceMs >= 0))) {
    throw new RangeError('maintenanceMs must be a number of at least 0');
  }
  if (c.faults !== undefined) {
    if (typeof c.faults !== 'object' || c.faults === null) throw new RangeError('faults must be an object');
    ctx.faults.set(c.faults);
  }
  if (typeof c.credits === 'number') ctx.credits.balance = c.credits;
  if (typeof c.creditDrain === 'number') ctx.opts.creditDrain = c.creditDrain;
  if (c.dailyLimit !== undefined) ctx.opts.dailyLimit = c.dailyLimit;
  if (typeof c.maintenanceMs === 'number') ctx.faults.maintenanceFor(c.maintenanceMs / ctx.opts.timeScale);
}

export function registerSimRoutes(app: FastifyInstance, ctx: SimContext): void {
  app.get('/sim/stats', () => statsOf(ctx));
  app.get('/sim/tasks', () => ctx.tasks.list());
  app.post('/sim/control', (request, reply) => {
    try {
      applyControl(ctx, request.body);
    } catch (e) {
      return reply.code(400).send({ ok: false, error: (e as Error).message });
    }
    return {
      ok: true,
      faults: ctx.faults.faults,
      credits: ctx.credits.balance,
      creditDrain: ctx.opts.creditDrain,
      maintenance: ctx.faults.inMaintenance(),
      dailyLimit: ctx.opts.dailyLimit,
    };
  });
  app.post('/sim/reset-stats', () => {
    ctx.stats.reset();
    ctx.createLimiter.resetPeaks();
    ctx.queryLimiter.resetPeaks();
    return { ok: true };
  });
}
