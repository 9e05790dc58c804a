/** The firmware version: package.json's, found by walking up from this module (works from firmware/ and dist/firmware/). */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

export function packageVersion(): string {
  if (cached !== undefined) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    try {
      const p = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (p.name === 'pqgate' && p.version) return (cached = p.version);
    } catch {
      // keep walking up
    }
    dir = dirname(dir);
  }
  return (cached = 'unknown');
}
