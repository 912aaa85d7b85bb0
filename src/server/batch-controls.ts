/**
 * The batches page's write actions: `POST /dashboard/batches/:id/pause` and `.../resume` (the same as
 * `upscale pause|resume --batch ID`), allowed only with `upscale serve --dashboard-write` (405 otherwise), behind the
 * dashboard's basic auth. A request from another site is refused before it gets here (403, the dashboard's one
 * cross-site check: access.ts `crossSiteReason`); only `application/json` bodies are accepted besides (415
 * otherwise), which a cross-site HTML form cannot send without a CORS preflight this server never grants.
 */
import type { FastifyInstance } from 'fastify';
import { pauseBatch, resumeBatch } from '../control/index.js';
import { checkBatchId } from '../queue/identity.js';
import type { Runtime } from '../runtime.js';
import { readOnlyMessage } from './access.js';

interface IdParams {
  id: string;
  action: string;
}

const ACTIONS = ['pause', 'resume'] as const;

export function registerBatchControls(app: FastifyInstance, rt: Runtime, write: boolean): void {
  app.post<{ Params: IdParams }>('/dashboard/batches/:id/:action', async (request, reply) => {
    const { id, action } = request.params;
    if (!(ACTIONS as readonly string[]).includes(action)) return reply.code(404).send({ error: `unknown action ${action}; use pause or resume` });
    if (!write) {
      return reply.code(405).send({ error: readOnlyMessage('POST', '/dashboard/batches/:id/:action') });
    }
    if (!/^application\/json\b/i.test(request.headers['content-type'] ?? '')) {
      return reply.code(415).send({ error: 'send the action as application/json' });
    }
    const problem = checkBatchId(id);
    if (problem) return reply.code(400).send({ error: problem });
    if (!(await rt.store.batchExists(id))) return reply.code(404).send({ error: `no batch named ${id}` });
    const result = action === 'pause' ? await pauseBatch(rt, id, { reason: 'paused from the dashboard' }) : await resumeBatch(rt, id);
    request.log.info({ batchId: id, action }, 'batch gate changed from the dashboard');
    return reply.header('cache-control', 'no-store').send(result);
  });
}
