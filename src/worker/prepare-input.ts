/**
 * The default input preparation of the submit lane: http(s) URLs go to kie.ai as they are; local files are
 * uploaded through kie.ai's free upload API just before submission, remembered on the job so a retry does not
 * upload again, and uploaded again when the earlier copy may have expired.
 */
import { stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Runtime } from '../runtime.js';
import type { PrepareInput } from './context.js';

/** kie.ai deletes uploads after 3 days (some report about 24 h): re-upload copies older than this. */
export const UPLOAD_REUSE_MS = 20 * 3600 * 1000;

export function isRemoteUrl(input: string): boolean {
  return /^https?:\/\//i.test(input);
}

export function localPath(input: string): string {
  return input.startsWith('file://') ? fileURLToPath(input) : input;
}

export function defaultPrepareInput(rt: Runtime): PrepareInput {
  return async (data) => {
    if (isRemoteUrl(data.input)) return { ok: true, url: data.input };
    if (data.uploadedUrl && data.uploadedAt && Date.now() - data.uploadedAt < UPLOAD_REUSE_MS) {
      return { ok: true, url: data.uploadedUrl };
    }
    const path = localPath(data.input);
    try {
      const s = await stat(path);
      if (!s.isFile()) return { ok: false, failCode: 'input', failMsg: `${path} is not a regular file` };
    } catch (e) {
      return { ok: false, failCode: 'input', failMsg: `${path} cannot be read: ${(e as NodeJS.ErrnoException).code ?? String(e)}` };
    }
    const uploaded = await rt.kie.uploadFileStream(path, { uploadPath: `kie-upscale-queue/${data.batchId}` });
    return { ok: true, url: uploaded.downloadUrl, update: { uploadedUrl: uploaded.downloadUrl, uploadedAt: Date.now() } };
  };
}
