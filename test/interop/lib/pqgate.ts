/**
 * A pqgate daemon in a network namespace, from the built tree (dist/): the
 * same binary and JSON configuration a user runs. Status comes from the CLI
 * over the control socket (`pqgate status --json`), as a user would get it.
 */
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Netns } from './netns.js';
import { sleep, type Spawned } from './proc.js';
import { makeInstanceDir } from './rootfs.js';
import type { IkeSaStatus } from '../../../firmware/ikev2/engine-types.js';

const here = dirname(fileURLToPath(import.meta.url));
/** Repository root (this file is test/interop/lib/pqgate.ts, or its compiled copy under dist/). */
export const REPO = here.includes(`${join('dist', 'test')}`) ? resolve(here, '..', '..', '..', '..') : resolve(here, '..', '..', '..');
export const CLI = join(REPO, 'dist', 'firmware', 'cli.js');

export interface PqgateOptions {
  ns: Netns;
  label?: string;
  /** The JSON configuration document (docs/config.md); control_socket is filled in. */
  config: Record<string, unknown>;
  env?: Record<string, string>;
  /** Extra node options before the script (e.g. ['--cpu-prof', '--cpu-prof-dir=DIR'] for a benchmark profile). */
  nodeArgs?: string[];
}

export class Pqgate {
  private constructor(
    readonly ns: Netns,
    readonly dir: string,
    readonly proc: Spawned,
    readonly socket: string,
    readonly keylog: string,
    private readonly release: () => void,
  ) {}

  static async start(o: PqgateOptions): Promise<Pqgate> {
    if (!existsSync(CLI)) throw new Error(`${CLI} missing: run npm run build first`);
    const { dir, release } = makeInstanceDir(`gate-${o.label ?? 'gw'}`);
    const socket = join(dir, 'control.sock');
    const keylog = join(dir, 'keys.uat');
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...o.config, control_socket: socket }, null, 2));
    const envs = Object.entries({ PQGATE_KEYLOG: keylog, ...(o.env ?? {}) }).map(([k, v]) => `${k}=${v}`);
    const proc = o.ns.spawn(['env', ...envs, 'node', ...(o.nodeArgs ?? []), CLI, 'daemon', '--config', join(dir, 'config.json'), '--log-level', 'debug'], join(dir, 'daemon.log'), `pqgate ${o.label ?? ''}`);
    const gw = new Pqgate(o.ns, dir, proc, socket, keylog, release);
    const deadline = Date.now() + 20_000;
    while (!existsSync(socket)) {
      if (proc.hasExited()) throw new Error(`pqgate exited during start-up:\n${gw.log()}`);
      if (Date.now() > deadline) throw new Error(`pqgate: no control socket after 20 s:\n${gw.log()}`);
      await sleep(50);
    }
    return gw;
  }

  log(): string {
    try {
      return readFileSync(join(this.dir, 'daemon.log'), 'utf8');
    } catch {
      return '';
    }
  }

  async cli(args: string[]): Promise<string> {
    const r = await this.ns.exec('node', [CLI, ...args, '--socket', this.socket], { timeoutMs: 20_000 });
    return r.stdout;
  }

  async status(): Promise<IkeSaStatus[]> {
    return JSON.parse(await this.cli(['status', '--json'])) as IkeSaStatus[];
  }

  async up(name: string): Promise<void> {
    await this.cli(['up', name]);
  }

  async down(name: string): Promise<void> {
    await this.cli(['down', name]);
  }

  /** Poll status until `pred` holds for some IKE SA; returns it. */
  async waitFor(pred: (s: IkeSaStatus) => boolean, timeoutMs = 15_000, what = 'IKE SA'): Promise<IkeSaStatus> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const st = await this.status().catch(() => [] as IkeSaStatus[]);
      const hit = st.find(pred);
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`pqgate: timed out waiting for ${what}; status ${JSON.stringify(st)}\n--- log ---\n${this.log().split('\n').slice(-60).join('\n')}`);
      await sleep(100);
    }
  }

  /** Key log lines in Wireshark's ikev2_decryption_table format. */
  ikeKeylog(): string {
    try {
      return readFileSync(this.keylog, 'utf8');
    } catch {
      return '';
    }
  }

  async stop(): Promise<void> {
    await this.proc.stop(5000);
    this.release();
  }
}
