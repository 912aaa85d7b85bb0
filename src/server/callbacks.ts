/**
 * The callback receiver, `POST /callbacks/kie/:id?t=<token>` (`:id` is a submit job id). A callback is a hint:
 * it is checked (the per-job token always, kie.ai's HMAC signature when KIE_WEBHOOK_HMAC_KEY is set), then only
 * promotes the task's parked poll job (see callback-resolve.ts). Answers `{"code":200,"msg":"success"}` at once;
 * duplicates and late callbacks are harmless and answered 200 too.
 *
 * The token in the URL names the job, so a body that cannot be read (kie's own documented examples are not valid JSON)
 * still promotes it: the task is the one the job follows, and with an HMAC key the signature is checked against
 * that taskId. A callback that comes while createTask's answer is still on its way is remembered in Redis for at
 * least POLL_DEADLINE (src/queue/early-callbacks.ts) and promotes the poll job the moment it is added.
 *
 * Answers: 401 wrong/missing token or signature, 413 body over the limit, 503 Redis down.
 * Every callback is counted in `upscale_callbacks_total{outcome}`.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { parseCallbackBody, verifyWebhookSignature, type ParsedCallback } from '../kie/callback.js';
import type { Counters } from '../metrics/counters.js';
import { checkCallbackToken } from '../queue/callback-token.js';
import { rememberEarlyCallback } from '../queue/early-callbacks.js';
import { parseSubmitJobId, submitJobId } from '../queue/identity.js';
import type { Runtime } from '../runtime.js';
import { jobTaskId, resolveCallback, type CallbackTarget, type Resolution } from './callback-resolve.js';
import { FollowUps, type FollowUpOptions } from './follow-ups.js';

export interface CallbackOptions {
  /** Largest callback body accepted; larger ones get 413. @defaultValue `65_536` bytes */
  bodyLimit?: number;
  /** Largest accepted distance between `X-Webhook-Timestamp` and now, either way. @defaultValue `300_000` ms (5 min) */
  signatureToleranceMs?: number;
  /** Retrying callbacks whose job is running. @defaultValue see `FollowUpOptions` */
  followUps?: FollowUpOptions;
}

export const CALLBACK_COUNTER = 'upscale_callbacks_total';

interface Params {
  id: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    callbackTarget?: CallbackTarget;
  }
}

function answer(reply: FastifyReply, code: number, msg: string) {
  return reply.code(code).header('cache-control', 'no-store').send({ code, msg });
}

function header(request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Registers the receiver on `app` (in its own scope: it reads every body as raw bytes). Returns the follow-ups to close. */
export function registerCallbacks(
  app: FastifyInstance,
  rt: Runtime,
  counters: Counters,
  options: CallbackOptions = {},
): FollowUps {
  const bodyLimit = options.bodyLimit ?? 65_536;
  const toleranceMs = options.signatureToleranceMs ?? 300_000;
  const count = (outcome: string) => counters.inc(CALLBACK_COUNTER, { outcome });
  const log = app.log.child({ part: 'callbacks' });
  const followUps = new FollowUps(options.followUps ?? {}, (key, outcome, error) => {
    count(outcome);
    const fields = { callback: key, outcome, ...(error ? { err: error } : {}) };
    if (outcome === 'expired')
      log.warn(
        fields,
        'callback not applied: its job kept running; the next scheduled check will see the task',
      );
    else log.info(fields, 'callback applied after its job finished running');
  });

  void app.register((scope, _opts, registered) => {
    scope.decorateRequest('callbackTarget', undefined);
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit }, (_req, body, done) => done(null, body));

    scope.setErrorHandler(async (error: FastifyError, request, reply) => {
      const status = error.statusCode ?? 500;
      if (status === 413) {
        count('too_large');
        return answer(reply, 413, `callback body is larger than ${bodyLimit} bytes`);
      }
      if (status >= 400 && status < 500) {
        count('malformed');
        return answer(reply, status, error.message);
      }
      request.log.error(
        { err: error },
        'callback could not be handled (is Redis up?); polling will find the task',
      );
      return answer(reply, 503, 'temporarily unavailable');
    });

    const checkToken = async (request: FastifyRequest<{ Params: Params }>, reply: FastifyReply) => {
      const { id } = request.params;
      const t = (request.query as Record<string, unknown>).t;
      const target = parseSubmitJobId(id);
      if (!target || typeof t !== 'string' || !checkCallbackToken(rt.config.callbackSecret, id, t)) {
        count('rejected_token');
        request.log.warn(
          { callbackId: id.slice(0, 80), tokenProblem: typeof t === 'string' ? 'wrong' : 'missing' },
          'callback refused: bad token',
        );
        return answer(reply, 401, 'invalid callback token');
      }
      request.callbackTarget = target;
    };

    scope.post<{ Params: Params }>(
      '/callbacks/kie/:id',
      { bodyLimit, onRequest: checkToken },
      async (request, reply) => {
        const id = request.params.id;
        const target = request.callbackTarget as CallbackTarget;
        let parsed: ParsedCallback | null = null;
        try {
          parsed = parseCallbackBody(request.body);
        } catch (e) {
          count('unreadable_body');
          const reason = (e as { kieMessage?: string }).kieMessage ?? 'unreadable callback body';
          request.log.warn({ callbackId: id, reason }, 'callback body unreadable; the token names the job, so its task is checked');
        }
        const taskId = parsed?.taskId ?? (await jobTaskId(rt, target));
        const key = rt.config.webhookHmacKey;
        if (key !== undefined) {
          const verdict =
            taskId === null
              ? { ok: false as const, reason: 'the body names no taskId and the job has none yet to verify against' }
              : verifyWebhookSignature({
                  taskId,
                  timestamp: header(request, 'x-webhook-timestamp'),
                  signature: header(request, 'x-webhook-signature'),
                  key,
                  toleranceMs,
                });
          if (!verdict.ok) {
            count('rejected_signature');
            request.log.warn(
              { callbackId: id, taskId, reason: verdict.reason },
              'callback refused: bad signature',
            );
            return answer(reply, 401, 'invalid webhook signature');
          }
        }
        const early = async (): Promise<Resolution> => {
          // Remember first, then look again: the lane adds the poll job first, then reads the memory.
          await rememberEarlyCallback(rt.redis, rt.store.keys, submitJobId(target.jobId, target.generation), taskId, rt.config.pollDeadlineMs + 60_000);
          return taskId === null ? 'pending' : resolveCallback(rt, target, taskId);
        };
        let resolution = taskId === null ? await early() : await resolveCallback(rt, target, taskId);
        if (resolution === 'pending' && taskId !== null) resolution = await early();
        const fields = { callbackId: id, taskId, claimed: parsed?.state ?? null, outcome: resolution };
        if (resolution === 'pending') {
          const followKey = `${id}/${taskId ?? '?'}`;
          if (taskId !== null && !followUps.start(followKey, () => resolveCallback(rt, target, taskId))) {
            if (followUps.has(followKey)) count('duplicate');
          }
          request.log.info(fields, 'callback received before its poll job exists; remembered until it does');
        } else {
          count(resolution);
          if (resolution === 'orphaned') {
            request.log.warn(
              fields,
              'callback for a task whose submit job ended without it: kie.ai holds a task nobody follows',
            );
          } else {
            request.log.info(fields, 'callback');
          }
        }
        return answer(reply, 200, 'success');
      },
    );
    registered();
  });
  return followUps;
}
