/**
 * Shared setup for the QEMU image tests: which boards have a built image,
 * why a test must skip, a work directory per run, and timing output.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { get } from 'node:https';
import { loadBoard, REPO, type BoardName } from '../../qemu/board.js';
import { formatResults, serialErrors, type CheckResult } from '../../qemu/checks.js';
import type { Vm } from '../../qemu/vm.js';

export const ARTIFACTS = join(REPO, 'test-artifacts', 'image');

function have(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Why a board's image test cannot run here (undefined = it can). */
export function skipReason(board: BoardName): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  const b = loadBoard(board);
  if (!have(b.json.qemu.binary)) return `${b.json.qemu.binary} missing (bash image/setup-host.sh)`;
  if (!existsSync(b.disk)) return `no image: npm run image -- --board ${board}`;
  if (!existsSync(b.firmwareCode)) return `${b.firmwareCode} missing (${b.json.qemu.firmwareCode.startsWith('/') ? 'bash image/setup-host.sh' : `npm run image -- --board ${board}`})`;
  return undefined;
}

export function workDir(label: string): string {
  mkdirSync(ARTIFACTS, { recursive: true });
  return mkdtempSync(join(ARTIFACTS, `${label}-`));
}

export function report(what: string, data: unknown): void {
  process.stdout.write(`[image-test] ${what}: ${typeof data === 'string' ? data : JSON.stringify(data)}\n`);
}

/** Fail with every failed check (and its output) listed. */
export function assertChecks(results: CheckResult[]): void {
  const failed = results.filter((r) => !r.pass);
  if (failed.length) throw new Error(`${failed.length}/${results.length} checks failed:\n${formatResults(results)}`);
}

/**
 * Kernel messages at loglevel ≤ 5 that QEMU/TCG always produces and that are
 * not errors of the image (timer calibration under emulation, absent
 * hardware the generic kernel probes for).
 */
export const BENIGN_SERIAL: RegExp[] = [/tsc: Unable to calibrate/, /APIC calibration not consistent/, /mtrr: your CPUs had inconsistent/];

export function assertCleanSerial(vm: Vm, from = 0): void {
  const bad = serialErrors(vm.serialText(from), BENIGN_SERIAL);
  if (bad.length) throw new Error(`${vm.name}: errors on the serial console (${vm.serialLog}):\n${bad.slice(0, 20).join('\n')}`);
}

export function buildInfo(board: BoardName): { rootfsBytes: number; buildSeconds: number } | undefined {
  const f = join(loadBoard(board).outDir, 'build-info.json');
  return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as { rootfsBytes: number; buildSeconds: number }) : undefined;
}

/** Poll https://127.0.0.1:PORT/ (self-signed certificate) until it answers; resolves with the status. */
export async function waitHttps(port: number, timeoutMs: number): Promise<{ status: number }> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const r = await new Promise<number | string>((resolve) => {
      const q = get({ host: '127.0.0.1', port, path: '/', rejectUnauthorized: false, timeout: 5000 }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      q.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      q.on('timeout', () => {
        q.destroy();
        resolve('timeout');
      });
    });
    if (typeof r === 'number') return { status: r };
    last = r;
    await new Promise((res) => setTimeout(res, 500));
  }
  throw new Error(`https://127.0.0.1:${port}/ did not answer within ${timeoutMs} ms (last: ${last})`);
}
