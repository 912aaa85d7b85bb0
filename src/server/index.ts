/** `upscale serve`'s HTTP app: callbacks, dashboard, metrics, health. See app.ts. */
export { buildApp, requestSerializer, type ServerOptions } from './app.js';
export { checkBasicAuth, dashboardCredentials, isLoopbackHost, warnIfDashboardExposed } from './auth.js';
export { CALLBACK_COUNTER, type CallbackOptions } from './callbacks.js';
export { resolveCallback, type Resolution } from './callback-resolve.js';
export { checkHealth, type Health } from './health.js';
export { collectMetrics } from './metrics.js';
export { renderBatchesPage, escapeHtml } from './batches-page.js';
