/**
 * What the demo enqueues: sample images the simulator renders (several sizes, png/jpg/webp, both models, several
 * factors), local files written to a temp folder (uploaded before submission), and inputs that must fail for a
 * visible reason (not an image, over 10 MB, output over 20,000 px, unreachable URL, a local file that is not an
 * image). Each carries what it should end as, so the demo can tell an expected failure from a surprise.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RECRAFT, TOPAZ, type Factor, type ModelName } from '../kie/models.js';
import { renderSampleImage } from '../sim/images.js';

export interface DemoItem {
  /** Short name for the table. */
  label: string;
  input: string;
  model: ModelName;
  factor: Factor | null;
  /** Input size when known (for the estimate and the table). */
  width: number | null;
  height: number | null;
  /** What the image should end as: succeeded, or failed with this failCode and a message matching `reason`. */
  expect: { state: 'succeeded' } | { state: 'failed'; failCode: string; reason: RegExp };
}

type Spec = [name: string, width: number, height: number, format: 'png' | 'jpg' | 'webp', model: ModelName, factor: Factor | null];

const REMOTE: Spec[] = [
  ['landscape', 640, 480, 'jpg', TOPAZ, '2'],
  ['portrait', 300, 400, 'png', TOPAZ, '4'],
  ['icon', 96, 96, 'webp', TOPAZ, '8'],
  ['banner', 1200, 300, 'jpg', TOPAZ, '1'],
  ['photo', 800, 600, 'webp', RECRAFT, null],
  ['sketch', 256, 192, 'png', RECRAFT, null],
  ['tile', 128, 128, 'png', TOPAZ, '2'],
  ['poster', 360, 480, 'jpg', TOPAZ, '4'],
];

const LOCAL: Spec[] = [
  ['cat', 200, 150, 'png', TOPAZ, '2'],
  ['dog', 320, 240, 'jpg', RECRAFT, null],
  ['leaf', 150, 150, 'webp', TOPAZ, '4'],
];

/** The demo's inputs; local files are written into `dir`. `closedPort` is a loopback port nobody listens on. */
export async function demoItems(simUrl: string, dir: string, closedPort: number): Promise<DemoItem[]> {
  const ok = { state: 'succeeded' } as const;
  const items: DemoItem[] = REMOTE.map(([name, width, height, format, model, factor]) => ({
    label: `${name}.${format} ${width}×${height}`,
    input: `${simUrl}/sim/images/${name}-${width}x${height}.${format}`,
    model,
    factor,
    width,
    height,
    expect: ok,
  }));
  for (const [name, width, height, format, model, factor] of LOCAL) {
    const path = join(dir, `${name}.${format}`);
    await writeFile(path, await renderSampleImage(name, width, height, format));
    items.push({ label: `local ${name}.${format} ${width}×${height}`, input: path, model, factor, width, height, expect: ok });
  }
  const notes = join(dir, 'notes.jpg');
  await writeFile(notes, 'This text file only pretends to be a JPEG.\n');
  const failed = (failCode: string, reason: RegExp) => ({ state: 'failed', failCode, reason }) as const;
  items.push(
    { label: 'notimage.jpg (HTML)', input: `${simUrl}/sim/images/notimage.jpg`, model: TOPAZ, factor: '2', width: null, height: null, expect: failed('preflight', /not an image/) },
    { label: 'huge.png 2000×1800, 10.3 MB', input: `${simUrl}/sim/images/huge-2000x1800.png`, model: TOPAZ, factor: '2', width: 2000, height: 1800, expect: failed('preflight', /over kie\.ai's 10 MB/) },
    { label: 'wide.jpg 3000×2000 at ×8', input: `${simUrl}/sim/images/wide-3000x2000.jpg`, model: TOPAZ, factor: '8', width: 3000, height: 2000, expect: failed('preflight', /20,000 px cap/) },
    { label: 'unreachable URL', input: `http://127.0.0.1:${closedPort}/missing.png`, model: TOPAZ, factor: '2', width: null, height: null, expect: failed('preflight', /could not be fetched/) },
    { label: 'local notes.jpg (text)', input: notes, model: RECRAFT, factor: null, width: null, height: null, expect: failed('preflight', /not an image/) },
  );
  return items;
}
