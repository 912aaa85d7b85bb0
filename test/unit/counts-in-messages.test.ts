/**
 * Counts people read are written by one function, `formatCount` (src/config/units.ts: `1 image`, `2 images`), as the
 * README's house rules say. A fresh user's trial found `upscale pause`, `resume`, `priority`, `retry`, `cancel`,
 * `export`, `status` and the dashboard printing `image(s)`, `output(s)`, `batch(es)`, `delivery(ies)`. The class: a
 * number placed before a noun with a hand-made "(s)". This test reads every source file for one.
 */
import { describe, expect, it } from 'vitest';
import { formatCount } from '../../src/config/units.js';
import { sourceCodeLines } from '../helpers/source-lines.js';

/** A template placeholder followed, within a few words, by a noun with a hand-made plural: `${n} image(s)`, `${n} older batch(es)`. */
const HAND_MADE = /\$\{[^}]+\}[^`$]{0,40}?\b[a-z]+\((s|es|ies)\)/;

describe('counts in messages', () => {
  it('no source file writes "(s)" after a count (http(s) is not a count)', () => {
    const found = sourceCodeLines()
      .filter((l) => HAND_MADE.test(l.text.replace(/http\(s\)/g, 'http')))
      .map((l) => `${l.where}: ${l.text.trim()}`);
    expect(found).toEqual([]);
  });

  it('the pattern catches the trial samples (the scan is not vacuous) and formatCount writes them', () => {
    for (const line of [
      'console.log(`Paused batch ${batchId}: its ${r.held} held image(s) wait`);',
      '`${n.targets} target(s) · ${n.pending} delivery(ies) pending`',
      '`${hidden} older finished batch(es) not shown`',
    ]) {
      expect(HAND_MADE.test(line), line).toBe(true);
    }
    expect(HAND_MADE.test('`"${u}" is not an http URL`')).toBe(false);
    expect([formatCount(1, 'image'), formatCount(2, 'image'), formatCount(3, 'older finished batch'), formatCount(2, 'delivery', 'deliveries')]).toEqual([
      '1 image',
      '2 images',
      '3 older finished batches',
      '2 deliveries',
    ]);
  });
});
