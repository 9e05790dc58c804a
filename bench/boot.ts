/**
 * `npm run bench:boot -- --board x86_64|arm64 [--runs N] [--keep-disk-runs M] [--json]`:
 * boot time of the built firmware image under QEMU (TCG), phase by phase,
 * from QEMU's start to the web admin answering HTTPS (issue 7).
 *
 * - N runs on a fresh disk and fresh firmware variables (a factory-new
 *   device: first boot creates the database, the web admin's certificate
 *   and the compile caches), then M boots of the last run's disk after a
 *   clean power-off (the normal case on a device: everything is there).
 * - Milestones are the serial-console lines of qemu/scenario.ts MILESTONES
 *   (ms since QEMU was started, as Vm records them), plus "web": the first
 *   real HTTP response over TLS on the forwarded port 443 to GET /login. QEMU's user-mode
 *   hostfwd accepts the TCP connection before anything listens in the
 *   guest, so a connect is not enough; the probe needs a complete TLS
 *   handshake and an HTTP status line. Probes start every 200 ms, each with
 *   a 3 s budget, overlapping (a probe sent while the guest's network is
 *   not up yet just hangs), so the resolution is ~200 ms + one round trip.
 * - "admin": the first answer that is not the web admin's 503 "starting"
 *   page, i.e. the admin's own setup or login page: the web admin and the
 *   daemon behind it both answer. This is the milestone of issue 7's target
 *   ("web admin reachable"); "web" alone may be the starting page. The probe
 *   asks for /login, not /: the application answers / without a session by
 *   a redirect to /login without asking the daemon, while /login asks the
 *   daemon whether an administrator exists (setup first) before it answers.
 * - Every run also reports the host's 1-minute load average at its start
 *   and QEMU's CPU time (utime + stime) up to the web milestone: on this
 *   shared 2-core machine a run on a loaded host shows as wall time ≫ CPU
 *   time, or as a high load.
 *
 * Options: --runs N (3) --keep-disk-runs M (1) --timeout S (per boot, 300)
 *          --workdir DIR (test-artifacts/bench-boot/<board>-<time>) --keep (leave the disks) --json
 *          --until MILESTONE (stop each boot there: quick A/B runs of the early phases)
 * Each run directory gets timeline.txt: every serial line with its arrival time.
 * Needs the image built (npm run image -- --board B). Not root-only, but the
 * image files are root's after a build.
 */
import { appendFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { request } from 'node:https';
import { join } from 'node:path';
import { isBoard, loadBoard, REPO, type BoardName } from '../qemu/board.js';
import { bootTimes, freePort, MILESTONES } from '../qemu/scenario.js';
import { Vm } from '../qemu/vm.js';
import { pidCpuMs } from './lib/cpu.js';

/** Milestones in boot order; `web` is measured on the forwarded port, the rest on the serial console. */
export const BOOT_MILESTONES = ['firmware', 'kernel', 'init', 'rootfs', 'system', 'daemon', 'web', 'admin'] as const;
/** Milestones seen on the forwarded HTTPS port rather than on the serial console. */
export const WEB_MILESTONES: readonly BootMilestone[] = ['web', 'admin'];
export type BootMilestone = (typeof BOOT_MILESTONES)[number];

/** Phases between consecutive milestones (the name says what runs in it). */
export const BOOT_PHASES: readonly { name: string; from: BootMilestone | 'start'; to: BootMilestone }[] = [
  { name: 'firmware', from: 'start', to: 'firmware' },
  { name: 'loader', from: 'firmware', to: 'kernel' },
  { name: 'kernel', from: 'kernel', to: 'init' },
  { name: 'initramfs', from: 'init', to: 'rootfs' },
  { name: 'rcS', from: 'rootfs', to: 'system' },
  { name: 'daemon', from: 'system', to: 'daemon' },
  { name: 'web', from: 'daemon', to: 'web' },
  { name: 'admin', from: 'web', to: 'admin' },
];

export interface BootRun {
  kind: 'fresh' | 'reboot';
  /** ms since QEMU start per milestone reached. */
  ms: Partial<Record<BootMilestone, number>>;
  /** Kernel uptime (s) when /init printed its first line (the kernel's own view of its boot). */
  kernelAtInitS?: number;
  /** HTTP status of the first web answer, and of the first one that was not 503 ("admin"). */
  webStatus?: number;
  adminStatus?: number;
  qemuCpuMs: number;
  /** QEMU's CPU time (ms) when each milestone was seen (sampled every 50 ms): less sensitive to host load than wall time. */
  cpuMs: Partial<Record<BootMilestone, number>>;
  /** 1-minute load average when the run started and when it ended. */
  loadStart: number;
  loadEnd: number;
  error?: string;
}

/** Median of the values that exist (undefined if none). */
export function median(xs: readonly (number | undefined)[]): number | undefined {
  const v = xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const m = v.length >> 1;
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

/** Phase durations (ms) of one run; a phase is missing when either end is. */
export function phases(ms: Partial<Record<BootMilestone, number>>): Record<string, number | undefined> {
  const out: Record<string, number | undefined> = {};
  for (const p of BOOT_PHASES) {
    const a = p.from === 'start' ? 0 : ms[p.from];
    const b = ms[p.to];
    out[p.name] = a !== undefined && b !== undefined ? b - a : undefined;
  }
  return out;
}

/** One HTTPS probe: resolves with the status when a full TLS handshake and an HTTP response arrived, else undefined. */
function probeHttps(port: number, timeoutMs: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/login', method: 'GET', rejectUnauthorized: false, timeout: timeoutMs, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('error', () => resolve(undefined));
    req.on('timeout', () => {
      req.destroy();
      resolve(undefined);
    });
    req.end();
  });
}

interface WebAnswer {
  at: number;
  status: number;
  cpuMs: number;
}

/**
 * Poll https://127.0.0.1:port/login every 200 ms (overlapping probes, at most 16
 * in flight) until an answer that is not 503 (the web admin's "starting"
 * page). Resolves with the first answer of any kind ("web") and the first
 * non-503 one ("admin"), in ms since vm start; a missing one is undefined.
 */
function waitWeb(vm: Vm, port: number, deadlineMs: number, stop: { stopped: boolean }): Promise<{ web?: WebAnswer; admin?: WebAnswer }> {
  return new Promise((resolve) => {
    let inFlight = 0;
    let done = false;
    const out: { web?: WebAnswer; admin?: WebAnswer } = {};
    const finish = () => {
      if (done) return;
      done = true;
      clearInterval(timer);
      resolve(out);
    };
    const timer = setInterval(() => {
      if (stop.stopped || !vm.running() || vm.elapsed() > deadlineMs) return finish();
      if (inFlight >= 16) return;
      inFlight++;
      void probeHttps(port, 3000).then((status) => {
        inFlight--;
        if (status === undefined || done) return;
        const pid = vm.pid();
        const a = { at: vm.elapsed(), status, cpuMs: pid ? pidCpuMs(pid) : 0 };
        out.web ??= a;
        if (status !== 503) {
          out.admin = a;
          finish();
        }
      });
    }, 200);
  });
}

async function bootOnce(vm: Vm, port: number, kind: BootRun['kind'], timeoutMs: number, until: BootMilestone): Promise<BootRun> {
  const loadStart = loadavg()[0]!;
  const from = vm.mark();
  vm.start();
  const stop = { stopped: false };
  const run: BootRun = { kind, ms: {}, qemuCpuMs: 0, cpuMs: {}, loadStart, loadEnd: 0 };
  const webWanted = WEB_MILESTONES.includes(until);
  const last = webWanted ? 'daemon' : (until as Exclude<BootMilestone, 'web' | 'admin'>);
  // QEMU's CPU time at each serial milestone, as soon as its line has arrived.
  let scanned = from;
  const sampler = setInterval(() => {
    const pid = vm.pid();
    if (!pid) return;
    const lines = vm.lines;
    if (scanned >= lines.length) return;
    const cpu = pidCpuMs(pid);
    for (; scanned < lines.length; scanned++) {
      for (const [k, re] of Object.entries(MILESTONES) as [BootMilestone, RegExp][]) {
        if (run.cpuMs[k] === undefined && re.test(lines[scanned]!.text)) run.cpuMs[k] = cpu;
      }
    }
  }, 50);
  try {
    const [web] = await Promise.all([
      webWanted ? waitWeb(vm, port, timeoutMs, stop) : Promise.resolve({} as { web?: WebAnswer; admin?: WebAnswer }),
      vm.waitFor(MILESTONES[last], timeoutMs, from).catch((e: Error) => {
        run.error = e.message;
      }),
    ]);
    const pid = vm.pid();
    if (!webWanted) run.cpuMs[until] ??= pid ? pidCpuMs(pid) : 0;
    Object.assign(run.ms, bootTimes(vm, from));
    if (web.web) {
      run.ms.web = web.web.at;
      run.cpuMs.web = web.web.cpuMs;
      run.webStatus = web.web.status;
    }
    if (web.admin) {
      run.ms.admin = web.admin.at;
      run.cpuMs.admin = web.admin.cpuMs;
      run.adminStatus = web.admin.status;
    }
    if (webWanted && !web.web) run.error ??= `the web admin did not answer HTTPS within ${timeoutMs} ms`;
    else if (until === 'admin' && !web.admin) run.error ??= `the web admin answered only "starting" (503) within ${timeoutMs} ms`;
    // QEMU's CPU time up to the last milestone reached.
    run.qemuCpuMs = run.cpuMs[until] ?? run.cpuMs.web ?? run.cpuMs.daemon ?? (pid ? pidCpuMs(pid) : 0);
    const init = vm.lines.slice(from).find((l) => MILESTONES.init.test(l.text));
    const up = init && /stage 1 at ([\d.]+)s/.exec(init.text);
    if (up) run.kernelAtInitS = Number(up[1]);
    // Every serial line with its arrival time: where a phase's time goes.
    appendFileSync(
      join(vm.dir, 'timeline.txt'),
      `=== ${kind} boot ${new Date().toISOString()}\n` + vm.lines.slice(from).map((l) => `${(l.at / 1000).toFixed(3).padStart(8)} ${l.text}`).join('\n') + '\n',
    );
  } finally {
    stop.stopped = true;
    clearInterval(sampler);
  }
  run.loadEnd = loadavg()[0]!;
  return run;
}

/** Clean power-off through the test console (rcK unmounts /data), then wait for QEMU to exit. */
async function powerOff(vm: Vm): Promise<void> {
  // exec() waits for the guest's test-console shell (started with the services), so this also works after --until.
  await vm.exec('(sleep 0.3; poweroff) >/dev/null 2>&1 &', 180_000);
  await vm.waitExit(120_000);
}

export interface BenchOptions {
  board: BoardName;
  runs: number;
  keepDiskRuns: number;
  timeoutMs: number;
  workDir: string;
  keep: boolean;
  /** Stop each boot at this milestone (quick A/B runs of the early phases). */
  until?: BootMilestone;
  log?: (line: string) => void;
}

export async function benchBoot(o: BenchOptions): Promise<{ board: BoardName; runs: BootRun[]; qemu: string[] }> {
  const board = loadBoard(o.board);
  if (!existsSync(board.disk)) throw new Error(`${board.disk} missing: npm run image -- --board ${o.board}`);
  mkdirSync(o.workDir, { recursive: true });
  const runs: BootRun[] = [];
  let argv: string[] = [];
  const vms: Vm[] = [];
  const cleanup = async () => Promise.all(vms.map((v) => v.kill()));
  const onSig = () => void cleanup().then(() => process.exit(130));
  process.on('SIGINT', onSig);
  process.on('SIGTERM', onSig);
  try {
    for (let i = 1; i <= o.runs; i++) {
      const port = await freePort('tcp');
      const vm = new Vm({ board, name: `${o.board}-${i}`, workDir: join(o.workDir, `run-${i}`), net: { hostPorts: { web: port } } });
      vms.push(vm);
      vm.prepare();
      argv = vm.argv();
      const r = await bootOnce(vm, port, 'fresh', o.timeoutMs, o.until ?? 'admin');
      runs.push(r);
      o.log?.(formatRun(`fresh ${i}`, r));
      o.log?.(formatCpu(r));
      const last = i === o.runs;
      if (last && o.keepDiskRuns > 0 && !r.error) {
        for (let k = 1; k <= o.keepDiskRuns; k++) {
          await powerOff(vm);
          const rr = await bootOnce(vm, port, 'reboot', o.timeoutMs, o.until ?? 'admin');
          runs.push(rr);
          o.log?.(formatRun(`reboot ${k}`, rr));
          o.log?.(formatCpu(rr));
          if (rr.error) break;
        }
      }
      await vm.kill();
      if (!o.keep) for (const f of ['disk.qcow2', 'vars.fd']) rmSync(join(vm.dir, f), { force: true });
    }
  } finally {
    await cleanup();
    process.off('SIGINT', onSig);
    process.off('SIGTERM', onSig);
  }
  return { board: o.board, runs, qemu: argv };
}

const s = (ms: number | undefined) => (ms === undefined ? '-' : (ms / 1000).toFixed(2));

export function formatHeader(): string {
  return `${'run'.padEnd(10)}${BOOT_MILESTONES.map((m) => m.padStart(9)).join('')}${'init@k'.padStart(8)}${'qemuCPU'.padStart(9)}${'load'.padStart(11)}`;
}

export function formatRun(label: string, r: BootRun): string {
  const cols = BOOT_MILESTONES.map((m) => s(r.ms[m]).padStart(9)).join('');
  const k = r.kernelAtInitS === undefined ? '-' : r.kernelAtInitS.toFixed(2);
  return `${label.padEnd(10)}${cols}${k.padStart(8)}${s(r.qemuCpuMs).padStart(9)}${`${r.loadStart.toFixed(1)}→${r.loadEnd.toFixed(1)}`.padStart(11)}${r.error ? `  ERROR ${r.error}` : ''}`;
}

/** QEMU's CPU seconds at each milestone of a run, under its wall-time columns. */
export function formatCpu(r: BootRun): string {
  return `${'  cpu'.padEnd(10)}${BOOT_MILESTONES.map((m) => s(r.cpuMs[m]).padStart(9)).join('')}`;
}

export function summarize(runs: readonly BootRun[], kind: BootRun['kind']): { milestones: Partial<Record<BootMilestone, number>>; phases: Record<string, number | undefined>; n: number } {
  const rs = runs.filter((r) => r.kind === kind && !r.error);
  const milestones: Partial<Record<BootMilestone, number>> = {};
  for (const m of BOOT_MILESTONES) {
    const v = median(rs.map((r) => r.ms[m]));
    if (v !== undefined) milestones[m] = v;
  }
  const ph: Record<string, number | undefined> = {};
  for (const p of BOOT_PHASES) ph[p.name] = median(rs.map((r) => phases(r.ms)[p.name]));
  return { milestones, phases: ph, n: rs.length };
}

function usage(msg?: string): never {
  if (msg) process.stderr.write(`bench:boot: ${msg}\n`);
  process.stderr.write('usage: npm run bench:boot -- --board x86_64|arm64 [--runs N] [--keep-disk-runs M] [--timeout S] [--until MILESTONE] [--workdir DIR] [--keep] [--json]\n');
  process.exit(2);
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  let board: BoardName | undefined;
  let runs = 3;
  let keepDiskRuns = 1;
  let timeoutS = 300;
  let workDir: string | undefined;
  let keep = false;
  let json = false;
  let until: BootMilestone = 'admin';
  const num = (a: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (v === undefined || !Number.isInteger(n) || n < min) usage(`${a} needs an integer ≥ ${min}`);
    return n;
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--board') {
      const b = args[++i];
      if (!b || !isBoard(b)) usage(`unknown board ${b ?? ''}`);
      board = b;
    } else if (a === '--runs') runs = num(a, args[++i], 1);
    else if (a === '--keep-disk-runs') keepDiskRuns = num(a, args[++i], 0);
    else if (a === '--timeout') timeoutS = num(a, args[++i], 10);
    else if (a === '--workdir') workDir = args[++i] ?? usage('--workdir needs a value');
    else if (a === '--keep') keep = true;
    else if (a === '--until') {
      const m = args[++i] as BootMilestone | undefined;
      if (!m || !(BOOT_MILESTONES as readonly string[]).includes(m)) usage(`--until one of ${BOOT_MILESTONES.join(', ')}`);
      until = m;
    }
    else if (a === '--json') json = true;
    else if (a === '-h' || a === '--help') usage();
    else usage(`unknown argument ${a}`);
  }
  if (!board) usage('--board is required');
  const dir = workDir ?? join(REPO, 'test-artifacts', 'bench-boot', `${board}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  if (!json) {
    process.stdout.write(`bench:boot ${board}: ${runs} fresh boot(s) + ${keepDiskRuns} re-boot(s) of the last disk; serial logs in ${dir}\n`);
    process.stdout.write(`seconds since QEMU start; web = first HTTPS answer (may be the 503 "starting" page), admin = first answer that is the admin's own page (web admin and daemon up: the issue 7 target); init@k = kernel uptime at /init; qemuCPU = QEMU's CPU seconds up to "${until}"; load = 1-min load average start→end; each run's "cpu" line: QEMU's CPU seconds at each milestone\n`);
    process.stdout.write(formatHeader() + '\n');
  }
  const res = await benchBoot({ board, runs, keepDiskRuns, timeoutMs: timeoutS * 1000, workDir: dir, keep, until, ...(json ? {} : { log: (l: string) => process.stdout.write(l + '\n') }) });
  const fresh = summarize(res.runs, 'fresh');
  const reboot = summarize(res.runs, 'reboot');
  if (json) {
    process.stdout.write(JSON.stringify({ ...res, median: { fresh, reboot } }) + '\n');
  } else {
    for (const [label, sm] of [
      ['fresh', fresh],
      ['reboot', reboot],
    ] as const) {
      if (sm.n === 0) continue;
      const r: BootRun = { kind: label, ms: sm.milestones, qemuCpuMs: median(res.runs.filter((x) => x.kind === label).map((x) => x.qemuCpuMs)) ?? 0, cpuMs: {}, loadStart: NaN, loadEnd: NaN };
      process.stdout.write(formatRun(`median(${sm.n})`, r).replace(/NaN→NaN/, '') + `  [${label}]\n`);
      process.stdout.write(`  phases ${label}: ${BOOT_PHASES.map((p) => `${p.name} ${s(sm.phases[p.name])}`).join(', ')}\n`);
    }
  }
  return res.runs.some((r) => r.error) ? 1 : 0;
}

if (process.argv[1] && /bench[\\/]boot\.(js|ts)$/.test(process.argv[1])) {
  main().then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`bench:boot: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
}
