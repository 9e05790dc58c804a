/**
 * The CPU's accelerated crypto drivers on the firmware image (AES-NI, CLMUL
 * GHASH, SHA-NI/SSSE3 on x86_64; the ARMv8 Crypto Extensions on arm64):
 * docs/image.md "Boot time".
 *
 * rcS loads them in the background once the daemon and the web admin are up
 * and the CPUs are idle (module loading competed with the services' start;
 * with the kernel's crypto self-tests on, i.e. `fips=1`, which overrides the
 * boards' `cryptomgr.notests`, each also runs its self-tests as it
 * registers, about 1 s of CPU under QEMU TCG) and then writes
 * CPU_CRYPTO_DONE. A Child SA installed before that would stay on the
 * generic implementations until its first rekey: the kernel binds an XFRM
 * state to the best implementation registered when the state is created.
 * So the kernel data plane calls loadCpuCryptoDrivers before its first SA
 * (XfrmDataPlane's beforeFirstSa): nothing to do once rcS is done, otherwise
 * the same `modprobe` of the CPU's modalias, which the kernel serialises
 * with rcS's (a module being loaded is waited for, a loaded one is skipped).
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

/** Written by rcS after its modprobe of the CPU's modalias. */
export const CPU_CRYPTO_DONE = '/run/pqgate/cpu-crypto.done';
const MODALIAS = '/sys/devices/system/cpu/modalias';

export interface CpuCryptoOptions {
  doneFile?: string;
  modaliasFile?: string;
  /** Runs `modprobe ARGS`; default execFile('modprobe') with a 60 s limit. */
  modprobe?: (args: string[]) => Promise<void>;
}

export type CpuCryptoResult = 'already-loaded' | 'loaded' | 'no-cpu-modalias';

function execModprobe(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('modprobe', args, { timeout: 60_000 }, (err, _out, stderr) => {
      if (err) reject(new Error(`modprobe ${args.join(' ')}: ${String(stderr).trim() || err.message}`));
      else resolve();
    });
  });
}

export async function loadCpuCryptoDrivers(o: CpuCryptoOptions = {}): Promise<CpuCryptoResult> {
  if (existsSync(o.doneFile ?? CPU_CRYPTO_DONE)) return 'already-loaded';
  let alias: string;
  try {
    alias = readFileSync(o.modaliasFile ?? MODALIAS, 'utf8').trim();
  } catch {
    return 'no-cpu-modalias';
  }
  // One word: "cpu:type:x86,ven...:feature:,0000,0001,..." (drivers/base/cpu.c).
  if (!/^cpu:[\x21-\x7e]{1,4096}$/.test(alias)) return 'no-cpu-modalias';
  await (o.modprobe ?? execModprobe)(['-a', '-q', alias]);
  return 'loaded';
}
