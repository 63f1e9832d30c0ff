import * as fs from 'node:fs';
import * as path from 'node:path';

function packageVersion(): string {
  // src/sync/ or dist/src/sync/: walk up to our package.json rather than import it, so the build does not
  // copy package.json into dist/.
  let dir = __dirname;
  for (let i = 0; i < 5; i++) {
    dir = path.dirname(dir);
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'cdp-lifecycle' && pkg.version) return pkg.version;
    } catch {
      // keep walking
    }
  }
  return '0.0.0';
}

/** Identifies cdp-lifecycle in `context.library` (Segment) and `context.cdp_lifecycle` (both). */
export const LIBRARY = { name: 'cdp-lifecycle', version: packageVersion() } as const;
