/**
 * Where tests put what they produce for people (screenshots, figures): `test-results/` (ignored by git) on every
 * run, and also the committed copy (docs/, test/chaos/last-run.json) when UPDATE_DOCS=1, so a plain `npm test`
 * leaves the work tree clean.
 */
import { mkdirSync } from 'node:fs';
import { copyFile, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ROOT } from './processes.js';

export const RESULTS_DIR = join(ROOT, 'test-results');

export function updateDocs(): boolean {
  return process.env.UPDATE_DOCS === '1';
}

/** A path under test-results/ for an artifact whose committed copy lives at `committedPath` (relative to the root). */
export function artifactPath(committedPath: string): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  return join(RESULTS_DIR, basename(committedPath));
}

/** Copies the artifact over its committed copy when UPDATE_DOCS=1. */
export async function publishArtifact(committedPath: string): Promise<void> {
  if (!updateDocs()) return;
  const target = join(ROOT, committedPath);
  mkdirSync(dirname(target), { recursive: true });
  await copyFile(artifactPath(committedPath), target);
}

export async function writeArtifact(committedPath: string, content: string): Promise<void> {
  await writeFile(artifactPath(committedPath), content);
  await publishArtifact(committedPath);
}
