/**
 * The callback URL a task is created with: `PUBLIC_BASE_URL/callbacks/kie/<submit job id>?t=<token>`. The token
 * is an HMAC of the submit job id under the callback secret: unguessable, and checkable without any state.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export function callbackToken(secret: string, submitJobId: string): string {
  return createHmac('sha256', secret).update(`callback/${submitJobId}`).digest('base64url').slice(0, 32);
}

export function checkCallbackToken(secret: string, submitJobId: string, token: string | undefined): boolean {
  if (!token) return false;
  const expected = Buffer.from(callbackToken(secret, submitJobId));
  const given = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export function callbackUrl(publicBaseUrl: string, secret: string, submitJobId: string): string {
  return `${publicBaseUrl}/callbacks/kie/${encodeURIComponent(submitJobId)}?t=${callbackToken(secret, submitJobId)}`;
}
