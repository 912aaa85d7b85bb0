/**
 * How the simulator answers: kie.ai's `{ code, msg, data }` envelope (uploads add `success`), with the HTTP
 * status chosen by the configured style, and the two non-JSON answers a gateway gives: Cloudflare's 403
 * "error code: 1010" for a request without User-Agent, and an HTML 502 page.
 */
import type { FastifyReply } from 'fastify';

export interface AnswerStyle {
  rateLimitStyle: 'http' | 'envelope';
  errorStyle: 'http' | 'envelope';
}

/** The HTTP status of an envelope with `code` under `style`. */
export function httpStatusFor(code: number, style: AnswerStyle): number {
  if (code === 200) return 200;
  if (code === 429) return style.rateLimitStyle === 'http' ? 429 : 200;
  return style.errorStyle === 'http' ? code : 200;
}

export function sendEnvelope(
  reply: FastifyReply,
  style: AnswerStyle,
  code: number,
  msg: string,
  data: unknown = null,
  upload = false,
): FastifyReply {
  const body = upload ? { success: code === 200, code, msg, data } : { code, msg, data };
  return reply
    .code(httpStatusFor(code, style))
    .type('application/json; charset=utf-8')
    .send(JSON.stringify(body));
}

export function sendCloudflare1010(reply: FastifyReply): FastifyReply {
  return reply.code(403).type('text/plain; charset=UTF-8').send('error code: 1010');
}

const HTML_502 = `<!DOCTYPE html>
<html lang="en-US"><head><title>api.kie.ai | 502: Bad gateway</title></head>
<body><div id="cf-wrapper"><h1>Bad gateway <span>Error code 502</span></h1>
<p>The web server reported a bad gateway error.</p>
<p>Cloudflare Ray ID: <strong>0000000000000000</strong></p></div></body></html>
`;

export function sendHtml502(reply: FastifyReply): FastifyReply {
  return reply.code(502).type('text/html; charset=UTF-8').send(HTML_502);
}

/** Standard messages per code, after kie.ai's documentation. */
export const MESSAGES: Readonly<Record<number, string>> = {
  200: 'success',
  401: 'You do not have access permissions',
  402: 'Credits insufficient',
  429: 'Too many requests, please try again later',
  455: 'Service unavailable: system maintenance',
  500: 'Internal server error, please try again later',
  501: 'Generation failed',
};
