/** The kie.ai client, its types, the error hierarchy, the model registry and the callback helpers. */
export * from './errors.js';
export * from './models.js';
export * from './types.js';
export { KieClient, PATHS } from './client.js';
export { readEnvelope, transportFailure, snippet, type Envelope, type EnvelopeResult } from './envelope.js';
export { parseTaskInfo, taskIdOf, durationOf } from './task-info.js';
export { readState, type ReadState } from './task-state.js';
export { parseRetryAfter } from './retry-after.js';
export { mimeTypeFor } from './uploads.js';
export {
  CALLBACK_ENDPOINT,
  parseCallbackBody,
  signWebhook,
  verifyWebhookSignature,
  type ParsedCallback,
  type WebhookSignatureInput,
  type WebhookVerdict,
} from './callback.js';
export { DEFAULT_USER_AGENT, VERSION } from './version.js';
