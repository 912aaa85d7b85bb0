/**
 * The simulator's one HTTP app, built without listening (fastify's testing guide): kie.ai's API and the
 * upload host behind the gate, and the public file, sample-image and `/sim/*` routes beside them.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { SimContext } from './context.js';
import { registerFileRoutes } from './files.js';
import { addGate } from './gate.js';
import { registerImageRoutes } from './images.js';
import { registerApiRoutes } from './routes-api.js';
import { registerSimRoutes } from './routes-sim.js';
import { MAX_UPLOAD_BYTES, registerUploadRoutes } from './routes-uploads.js';

export async function buildSimApp(ctx: SimContext): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, bodyLimit: MAX_UPLOAD_BYTES, forceCloseConnections: true });
  await app.register((api, _opts, done) => {
    addGate(api, ctx, false);
    registerApiRoutes(api, ctx);
    done();
  });
  await app.register((upload, _opts, done) => {
    addGate(upload, ctx, true);
    registerUploadRoutes(upload, ctx);
    done();
  });
  registerImageRoutes(app);
  registerFileRoutes(app, ctx.files, () =>
    ctx.faults.draw('truncatedResultRate') ? 'truncated' : ctx.faults.draw('gzipResultRate') ? 'gzip' : 'normal',
  );
  registerSimRoutes(app, ctx);
  app.setNotFoundHandler((_request, reply) =>
    reply.code(404).send({ code: 404, msg: 'Not Found', data: null }),
  );
  return app;
}
