/** Corpus and crash directories (fuzz/corpus/<target>/, fuzz/crashes/<target>/) relative to the repository. */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';

/** The repository root: the nearest ancestor holding package.json (works from fuzz/ and dist/fuzz/). */
export function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    if (existsSync(join(d, 'package.json')) && existsSync(join(d, 'firmware'))) return d;
    d = resolve(d, '..');
  }
  throw new Error('repository root not found');
}

export const corpusDir = (target: string): string => join(repoRoot(), 'fuzz', 'corpus', target);
export const crashDir = (target: string): string => join(repoRoot(), 'fuzz', 'crashes', target);

/** The *.bin inputs of a target's corpus, sorted by name (deterministic order for seeded runs). */
export function loadCorpus(target: string): Uint8Array[] {
  const d = corpusDir(target);
  if (!existsSync(d)) return [];
  return readdirSync(d)
    .filter((f) => f.endsWith('.bin'))
    .sort()
    .map((f) => new Uint8Array(readFileSync(join(d, f))));
}

export function loadCorpusJson<T>(target: string, file: string): T {
  return JSON.parse(readFileSync(join(corpusDir(target), file), 'utf8')) as T;
}

/** Write a crashing / hanging input plus a text file with the reason; returns the .bin path. */
export function saveCrash(target: string, kind: 'crash' | 'hang' | 'memory', input: Uint8Array, reason: string): string {
  const d = crashDir(target);
  mkdirSync(d, { recursive: true });
  const h = createHash('sha1').update(input).digest('hex').slice(0, 16);
  const p = join(d, `${kind}-${h}.bin`);
  writeFileSync(p, input);
  writeFileSync(join(d, `${kind}-${h}.txt`), reason.endsWith('\n') ? reason : reason + '\n');
  return p;
}
