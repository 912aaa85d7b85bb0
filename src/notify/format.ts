/**
 * The bodies and headers of a notification. Standard Webhooks (https://www.standardwebhooks.com/, the
 * `standardwebhooks` package): `webhook-id` (the event's stable id), `webhook-timestamp` (Unix seconds of this
 * try), `webhook-signature` (`v1,<base64 HMAC-SHA256 of "id.timestamp.body">` with NOTIFY_SECRET). The JSON form
 * is `{ type, timestamp, data }` as the specification recommends, with our `id`, `batchId` and `text` added; the
 * Slack form is `{ text }`, which Slack's (and most chat tools') incoming webhooks accept.
 */
import { Webhook } from 'standardwebhooks';
import type { NotifyEvent } from './events.js';

export type NotifyFormat = 'json' | 'slack';

export function eventBody(event: NotifyEvent, format: NotifyFormat): string {
  if (format === 'slack') return JSON.stringify({ text: event.text });
  return JSON.stringify({ type: event.type, timestamp: new Date(event.at).toISOString(), id: event.id, batchId: event.batchId, text: event.text, data: event.data });
}

/**
 * A signer for NOTIFY_SECRET: a `whsec_`-prefixed secret is base64 (the Standard Webhooks form); any other text is
 * used as raw bytes. Returns null without a secret (requests carry id and timestamp but no signature).
 */
export function makeSigner(secret: string | undefined): ((id: string, at: Date, body: string) => string) | null {
  if (secret === undefined) return null;
  const wh = secret.startsWith('whsec_') ? new Webhook(secret) : new Webhook(secret, { format: 'raw' });
  return (id, at, body) => wh.sign(id, at, body);
}

/** The request headers of one try at `now`. */
export function webhookHeaders(id: string, body: string, sign: ReturnType<typeof makeSigner>, now: number): Record<string, string> {
  const at = new Date(Math.floor(now / 1000) * 1000);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': 'kie-upscale-queue (notifications)',
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
  };
  if (sign) headers['webhook-signature'] = sign(id, at, body);
  return headers;
}

/** A target URL without its path and query (chat webhook URLs carry their secret there). */
export function safeTarget(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}/…`;
  } catch {
    return 'invalid URL';
  }
}
