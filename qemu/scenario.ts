/**
 * Scenario folders (strongSwan's testing/tests/<suite>/<test>/ idea):
 *
 *   qemu/scenarios/<name>/
 *     scenario.json   description, hosts (board, files for /data, links)
 *     <host>/...      the files pushed to each host (config, network.conf)
 *     pretest.dat     host::command           run first, must succeed
 *     evaltest.dat    host::command::regex::YES|NO
 *     posttest.dat    host::command           run last (best effort)
 *
 * A testbed boots the scenario's VMs (each through UEFI from its own qcow2
 * overlay of the board's disk), joins linked VMs with -netdev dgram on
 * 127.0.0.1, pushes the host files to the data partition and restarts the
 * network and the daemon with them. Boards can be overridden per run
 * (`board: "${BOARD}"` in scenario.json takes the run's board).
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { join } from 'node:path';
import { loadBoard, REPO, type BoardName } from './board.js';
import { parseChecks, parseSteps, type Check, type CheckHost, type Step } from './checks.js';
import { Vm } from './vm.js';

export interface HostSpec {
  board: string;
  /** Guest path → file in the scenario folder. */
  files?: Record<string, string>;
  /** Forwarded guest ports (names from board.json qemu.forwards). */
  forward?: string[];
  /** Run QEMU inside this network namespace (set by the test for host-side peers). */
  netns?: string;
}

export interface ScenarioSpec {
  description: string;
  hosts: Record<string, HostSpec>;
  /** Point-to-point links between two hosts' eth1 (-netdev dgram). */
  links?: [string, string][];
}

export interface Scenario {
  name: string;
  dir: string;
  spec: ScenarioSpec;
  pre: Step[];
  checks: Check[];
  post: Step[];
}

export const SCENARIOS_DIR = join(REPO, 'qemu', 'scenarios');

export function loadScenario(name: string): Scenario {
  const dir = join(SCENARIOS_DIR, name);
  const spec = JSON.parse(readFileSync(join(dir, 'scenario.json'), 'utf8')) as ScenarioSpec;
  const read = (f: string) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), 'utf8') : '');
  return { name, dir, spec, pre: parseSteps(read('pretest.dat')), checks: parseChecks(read('evaltest.dat')), post: parseSteps(read('posttest.dat')) };
}

/** A free port on 127.0.0.1 (TCP or UDP). */
export function freePort(proto: 'tcp' | 'udp' = 'tcp'): Promise<number> {
  if (proto === 'udp')
    return new Promise((resolve, reject) => {
      const s = createSocket('udp4');
      s.once('error', reject);
      s.bind(0, '127.0.0.1', () => {
        const p = s.address().port;
        s.close(() => resolve(p));
      });
    });
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/**
 * Boot milestones on the serial console, in boot order: the firmware hands
 * over to the boot loader (BdsDxe), the loader has read the kernel and
 * initramfs and started the kernel's EFI stub, the kernel runs /init
 * (stage 1 prints its first line), the root filesystem is mounted, rcS is
 * done, the daemon's control socket is up.
 */
export const MILESTONES = {
  firmware: /BdsDxe: (loading|starting) Boot|EFI stub:/,
  kernel: /EFI stub: |Booting Linux|Linux version/,
  init: /pqgate-initramfs: stage 1/,
  rootfs: /pqgate-initramfs: slot [ab]: root filesystem/,
  system: /pqgate-init: system ready/,
  daemon: /control socket ready|\binfo\s+ready\b/,
} as const;

export interface BootTimes {
  /** ms since QEMU started, per milestone reached. */
  [milestone: string]: number;
}

export class Testbed {
  readonly vms = new Map<string, Vm>();
  readonly hostPorts = new Map<string, Record<string, number>>();

  constructor(
    readonly scenario: Scenario,
    readonly workDir: string,
    private readonly opts: { board?: BoardName; echo?: NodeJS.WritableStream } = {},
  ) {}

  boardOf(host: string): BoardName {
    const b = this.scenario.spec.hosts[host]!.board;
    return (b === '${BOARD}' ? (this.opts.board ?? 'x86_64') : b) as BoardName;
  }

  /** Create and power on every VM. */
  async start(): Promise<void> {
    const spec = this.scenario.spec;
    const lanOf = new Map<string, string>();
    for (const [a, b] of spec.links ?? []) {
      const [pa, pb] = [await freePort('udp'), await freePort('udp')];
      // Each side sends to the other's port: a point-to-point Ethernet over UDP on loopback.
      const dgram = (l: number, r: number) => `dgram,id=lan,local.type=inet,local.host=127.0.0.1,local.port=${l},remote.type=inet,remote.host=127.0.0.1,remote.port=${r}`;
      lanOf.set(a, dgram(pa, pb));
      lanOf.set(b, dgram(pb, pa));
    }
    let i = 0;
    for (const [name, h] of Object.entries(spec.hosts)) {
      const board = loadBoard(this.boardOf(name));
      const ports: Record<string, number> = {};
      for (const f of h.forward ?? []) {
        const fw = board.json.qemu.forwards.find((x) => x.name === f);
        if (!fw) throw new Error(`${name}: no forward named '${f}' in ${board.name}/board.json`);
        ports[f] = await freePort(fw.proto);
      }
      this.hostPorts.set(name, ports);
      const n = ++i;
      const vm = new Vm({
        board,
        name,
        workDir: join(this.workDir, name),
        ...(h.netns ? { netns: h.netns } : {}),
        ...(this.opts.echo ? { echo: this.opts.echo } : {}),
        net: {
          hostPorts: ports,
          wanMac: `52:54:00:12:34:${(0x10 + n).toString(16)}`,
          ...(lanOf.has(name) ? { lanNetdev: lanOf.get(name)!, lanMac: `52:54:00:12:35:${(0x10 + n).toString(16)}` } : {}),
        },
      });
      vm.prepare();
      this.vms.set(name, vm);
    }
    for (const vm of this.vms.values()) vm.start();
  }

  vm(name: string): Vm {
    const v = this.vms.get(name);
    if (!v) throw new Error(`no VM '${name}'`);
    return v;
  }

  /** Wait for every VM's daemon; returns the boot milestones (ms) per VM. */
  async waitBooted(timeoutMs = 180_000): Promise<Record<string, BootTimes>> {
    const out: Record<string, BootTimes> = {};
    await Promise.all(
      [...this.vms.entries()].map(async ([name, vm]) => {
        await vm.waitFor(MILESTONES.daemon, timeoutMs);
        out[name] = bootTimes(vm);
      }),
    );
    return out;
  }

  /**
   * Push each host's files (scenario folder → guest path) and restart the
   * network and the daemon on them; waits for the new daemon.
   */
  async applyHostFiles(timeoutMs = 120_000): Promise<void> {
    await Promise.all(
      Object.entries(this.scenario.spec.hosts).map(async ([name, h]) => {
        if (!h.files || Object.keys(h.files).length === 0) return;
        const vm = this.vm(name);
        for (const [guest, local] of Object.entries(h.files)) await vm.writeFile(guest, readFileSync(join(this.scenario.dir, local)));
        const mark = vm.mark();
        await vm.sh('/usr/lib/pqgate/network start && kill $(cat /run/pqgate/pqgate.pid)');
        await vm.waitFor(MILESTONES.daemon, timeoutMs, mark);
      }),
    );
  }

  /** Check hosts: every VM (plus any extra host-side peers). */
  checkHosts(extra: Record<string, CheckHost> = {}): Record<string, CheckHost> {
    const hosts: Record<string, CheckHost> = { ...extra };
    for (const [name, vm] of this.vms) hosts[name] = { exec: (cmd, t) => vm.exec(cmd, t) };
    return hosts;
  }

  async stop(): Promise<void> {
    await Promise.all([...this.vms.values()].map((vm) => vm.kill()));
  }
}

/** Milestone times (ms since QEMU start) seen on a VM's serial console since line `from`. */
export function bootTimes(vm: Vm, from = 0): BootTimes {
  const t: BootTimes = {};
  for (const [k, re] of Object.entries(MILESTONES)) {
    const l = vm.lines.slice(from).find((x) => re.test(x.text));
    if (l) t[k] = l.at;
  }
  return t;
}
