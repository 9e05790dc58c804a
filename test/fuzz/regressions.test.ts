/**
 * Regressions from fuzzing (docs/fuzzing.md). Every input that ever crashed
 * or hung a target is kept in test/fuzz/regressions/<target>/*.bin and run
 * through that target here (copy it from fuzz/crashes/<target>/ once the bug
 * is fixed); bugs found in an API the targets cannot reach through the wire
 * get an explicit test below.
 */
import { describe, it, expect } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TARGETS } from '../../fuzz/targets/index.js';
import { loadCorpus } from '../../fuzz/lib/corpus.js';
import { isCodecError, Reassembler, type FragmentInfo } from '../../firmware/ikev2/codec/index.js';
import { ExchangeType } from '../../firmware/ikev2/constants.js';

const here = dirname(fileURLToPath(import.meta.url));

describe('fuzz regressions: saved inputs', () => {
  it('every checked-in corpus input runs cleanly through its target', () => {
    for (const t of TARGETS) {
      const ctx = t.setup();
      const corpus = loadCorpus(t.name);
      expect(corpus.length, t.name).toBeGreaterThan(0);
      for (const c of corpus) expect(() => t.run(c, ctx), t.name).not.toThrow();
    }
  });

  for (const t of TARGETS) {
    const dir = join(here, 'regressions', t.name);
    const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.bin')).sort() : [];
    for (const f of files)
      it(`${t.name}/${f} runs without a crash`, () => {
        const ctx = t.setup();
        const input = new Uint8Array(readFileSync(join(dir, f)));
        expect(() => t.run(input, ctx)).not.toThrow();
      });
  }
});

describe('fuzz regressions: Reassembler fed out-of-contract fragments', () => {
  // Found while writing the reassembly target: decodeProtected rejects Fragment Number 0 or
  // above Total Fragments (RFC 7383 §2.5), but the Reassembler trusted its caller, and a
  // fragment numbered beyond the set counted towards completion, so assemble() read a hole
  // (TypeError) or the set completed without fragment 1.
  const frag = (number: number, total: number): FragmentInfo => ({
    kind: 'fragment',
    header: {
      spiI: new Uint8Array(8).fill(1),
      spiR: new Uint8Array(8).fill(2),
      nextPayload: 53,
      majorVersion: 2,
      minorVersion: 0,
      exchange: ExchangeType.IKE_INTERMEDIATE,
      response: false,
      initiator: true,
      messageId: 1,
      length: 0,
    } as FragmentInfo['header'],
    number,
    total,
    firstPayload: number === 1 ? 41 : 0,
    plaintext: new Uint8Array(8),
    unprotected: [],
    intAuthPrefix: new Uint8Array(28),
    skfFlags: 0,
  });

  for (const [n, total] of [
    [3, 2],
    [0, 2],
    [-1, 2],
    [1.5, 2],
    [1, 0],
  ] as const)
    it(`number ${n} of ${total}: typed error, set unaffected`, () => {
      const r = new Reassembler();
      r.add('q', frag(2, 2));
      let err: unknown;
      try {
        r.add('q', frag(n, total));
      } catch (e) {
        err = e;
      }
      expect(isCodecError(err)).toBe(true);
      expect(r.pending).toBe(1);
    });

  it('a set never completes from numbers outside it', () => {
    const r = new Reassembler();
    for (const n of [2, 3, 4]) {
      try {
        r.add('q', frag(n, 2));
      } catch (e) {
        expect(isCodecError(e)).toBe(true);
      }
    }
    expect(r.pending).toBe(1);
  });
});
