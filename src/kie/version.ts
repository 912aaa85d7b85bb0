/** The package version, for the default User-Agent. Read from package.json (two levels up from src/kie and dist/kie). */
import { createRequire } from 'node:module';

function readVersion(): string {
  try {
    const pkg = createRequire(import.meta.url)('../../package.json') as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export const VERSION: string = readVersion();
export const DEFAULT_USER_AGENT = `kie-upscale-queue/${VERSION} (+node)`;
