#!/usr/bin/env node
// Reads `npm audit --json` on standard input and prints one line: `ok: ...`, `vulnerable: N high, N critical`,
// or `unavailable: why` when the registry offers no audit service (some mirrors answer 405). Used by .ci/run.
import { Buffer } from 'node:buffer';
import process from 'node:process';

/** @typedef {{ high?: number; critical?: number }} Counts */
/** @typedef {{ code?: string; summary?: string; message?: string; detail?: string }} AuditError */
/** @typedef {{ metadata?: { vulnerabilities?: Counts }; error?: AuditError; message?: string; statusCode?: number }} AuditReport */

/** @param {string} text */
function verdict(text) {
  /** @type {AuditReport} */
  let report;
  try {
    const parsed = /** @type {unknown} */ (JSON.parse(text));
    report = /** @type {AuditReport} */ (parsed);
  } catch {
    return 'unavailable: npm audit printed no JSON';
  }
  const v = report.metadata?.vulnerabilities;
  if (!v) {
    const e = report.error ?? {};
    const why = [e.code, report.statusCode, e.summary || e.message || e.detail || report.message].filter(Boolean).join(' ');
    return `unavailable: ${why || 'no vulnerability report'}`;
  }
  const bad = (v.high ?? 0) + (v.critical ?? 0);
  return bad > 0 ? `vulnerable: ${v.high ?? 0} high, ${v.critical ?? 0} critical` : `ok: ${JSON.stringify(v)}`;
}

const chunks = /** @type {Buffer[]} */ ([]);
process.stdin.on('data', (d) => chunks.push(/** @type {Buffer} */ (d)));
process.stdin.on('end', () => process.stdout.write(`${verdict(Buffer.concat(chunks).toString('utf8'))}\n`));
