/**
 * The appliance as a user runs it, for the interop tests
 * (test/interop/appliance-*.test.ts): `pqgate daemon --db` from the built
 * tree (dist/) inside a network namespace, its database created from an
 * initial document, configured through the control API (the admin socket
 * is a file, reachable from the test process whatever the namespace).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Netns } from '../interop/lib/netns.js';
import { sleep, type Spawned } from '../interop/lib/proc.js';
import { makeInstanceDir } from '../interop/lib/rootfs.js';
import { CLI } from '../interop/lib/pqgate.js';
import { ControlClient } from '../../firmware/control/client.js';
import type { IkeSaStatus } from '../../firmware/ikev2/engine-types.js';

export class ApplianceGate {
  private constructor(
    readonly ns: Netns,
    readonly dir: string,
    readonly proc: Spawned,
    readonly socket: string,
    private readonly release: () => void,
  ) {}

  static async start(o: { ns: Netns; label?: string; initial: Record<string, unknown> }): Promise<ApplianceGate> {
    if (!existsSync(CLI)) throw new Error(`${CLI} missing: run npm run build first`);
    const { dir, release } = makeInstanceDir(`app-${o.label ?? 'gw'}`);
    const socket = join(dir, 'run', 'ctl.sock');
    writeFileSync(join(dir, 'initial.json'), JSON.stringify(o.initial, null, 2), { mode: 0o600 });
    const argv = ['node', CLI, 'daemon', '--db', join(dir, 'db', 'pqgate.db'), '--initial-config', join(dir, 'initial.json'), '--socket', socket, '--web-socket', 'none', '--syslog', 'off', '--log-level', 'debug'];
    const proc = o.ns.spawn(argv, join(dir, 'daemon.log'), `pqgate appliance ${o.label ?? ''}`);
    const gw = new ApplianceGate(o.ns, dir, proc, socket, release);
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

  async call<T = any>(method: string, params?: unknown): Promise<T> {
    const c = await ControlClient.connect(this.socket, { timeoutMs: 30_000 });
    try {
      return await c.call<T>(method, params);
    } finally {
      c.close();
    }
  }

  status(): Promise<IkeSaStatus[]> {
    return this.call<IkeSaStatus[]>('status');
  }

  /** Poll status until `pred` holds for the whole list; returns it. */
  async waitFor(pred: (st: IkeSaStatus[]) => boolean, timeoutMs = 20_000, what = 'status'): Promise<IkeSaStatus[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const st = await this.status().catch(() => [] as IkeSaStatus[]);
      if (pred(st)) return st;
      if (Date.now() > deadline) throw new Error(`pqgate: timed out waiting for ${what}; status ${JSON.stringify(st)}\n--- log ---\n${this.log().split('\n').slice(-80).join('\n')}`);
      await sleep(100);
    }
  }

  async stop(): Promise<void> {
    await this.proc.stop(5000);
    this.release();
  }
}

/** The established IKE SA of a tunnel with an installed Child SA, if any. */
export function up(st: IkeSaStatus[], tunnel: string): IkeSaStatus | undefined {
  return st.find((s) => s.tunnel === tunnel && s.state === 'ESTABLISHED' && s.children.some((c) => c.state === 'INSTALLED'));
}
