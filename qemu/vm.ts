/**
 * One QEMU virtual machine booting a firmware disk through UEFI, the way
 * hardware boots it: OVMF/AAVMF (a private copy of the VARS file) →
 * systemd-boot → the slot's BLS entry → kernel + initramfs → rootfs.
 *
 * - The disk is a qcow2 overlay on image/out/<board>/disk.img, so the image
 *   stays pristine and a reboot keeps what the VM wrote (data partition).
 * - The serial console is QEMU's stdio: recorded to serial.log, and matched
 *   line by line for boot milestones (waitFor) with timestamps.
 * - The test console is a virtio-serial port (org.pqgate.test) on a unix
 *   socket; the image runs a shell on it (service test-console). exec()
 *   sends a command and reads up to a unique end marker with the exit code.
 * - Networking: user mode only (hostfwd to 127.0.0.1), plus an optional
 *   second NIC on -netdev socket/dgram to another VM on 127.0.0.1. With
 *   `netns`, QEMU itself runs inside a network namespace, so user-mode
 *   traffic leaves from that namespace (a strongSwan peer there).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, createWriteStream, existsSync, mkdirSync, rmSync, type WriteStream } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { qemuArgv, type Board, type VmNetwork } from './board.js';

export interface VmOptions {
  board: Board;
  name: string;
  /** Directory for this VM's disk overlay, VARS copy, sockets and logs. */
  workDir: string;
  net?: VmNetwork;
  /** Run QEMU inside this network namespace (`ip netns exec`). */
  netns?: string;
  /** Attach the test console (default true). */
  testConsole?: boolean;
  /** Echo serial output to this stream (e.g. process.stdout for `npm run qemu`). */
  echo?: NodeJS.WritableStream;
}

export interface ExecResult {
  code: number;
  output: string;
}

export class VmError extends Error {
  constructor(
    readonly vm: string,
    message: string,
  ) {
    super(`${vm}: ${message}`);
  }
}

interface Waiter {
  re: RegExp;
  from: number;
  resolve: (m: { line: string; at: number }) => void;
}

export class Vm {
  readonly board: Board;
  readonly name: string;
  readonly dir: string;
  readonly serialLog: string;
  readonly testSocket: string;
  /** Serial console lines with the ms since start() they arrived. */
  readonly lines: { at: number; text: string }[] = [];
  private proc: ChildProcess | undefined;
  private log: WriteStream | undefined;
  private partial = '';
  private t0 = 0;
  private waiters: Waiter[] = [];
  private con: Socket | undefined;
  private conBuf = '';
  private conSeq = 0;
  private conQueue: Promise<unknown> = Promise.resolve();
  private exited: Promise<number | null> | undefined;

  constructor(private readonly opts: VmOptions) {
    this.board = opts.board;
    this.name = opts.name;
    this.dir = opts.workDir;
    this.serialLog = join(this.dir, 'serial.log');
    this.testSocket = join(this.dir, 'test.sock');
  }

  /** Fresh disk overlay and firmware variables (a factory-new device). */
  prepare(): void {
    if (!existsSync(this.board.disk)) throw new VmError(this.name, `${this.board.disk} missing: run npm run image -- --board ${this.board.name}`);
    mkdirSync(this.dir, { recursive: true });
    rmSync(join(this.dir, 'disk.qcow2'), { force: true });
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', this.board.disk, '-F', 'raw', join(this.dir, 'disk.qcow2')]);
    copyFileSync(this.board.firmwareVars, join(this.dir, 'vars.fd'));
  }

  argv(): string[] {
    return qemuArgv(
      this.board,
      { disk: join(this.dir, 'disk.qcow2'), vars: join(this.dir, 'vars.fd'), serial: 'stdio', ...(this.opts.testConsole === false ? {} : { testSocket: this.testSocket }) },
      this.opts.net,
    );
  }

  /** Power on. Resolves once QEMU runs (not when the guest is up: see waitFor). */
  start(): void {
    if (this.proc) throw new VmError(this.name, 'already running');
    rmSync(this.testSocket, { force: true });
    const argv = this.argv();
    const full = this.opts.netns ? ['ip', 'netns', 'exec', this.opts.netns, ...argv] : argv;
    this.log = createWriteStream(this.serialLog, { flags: 'a' });
    this.log.write(`\n=== ${new Date().toISOString()} start: ${full.join(' ')}\n`);
    this.t0 = Date.now();
    const p = spawn(full[0]!, full.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc = p;
    p.stdout!.on('data', (d: Buffer) => this.onSerial(d));
    p.stderr!.on('data', (d: Buffer) => this.log?.write(`[qemu stderr] ${d.toString()}`));
    this.exited = new Promise((res) => p.on('exit', (code) => res(code)));
    void this.exited.then((code) => {
      this.log?.write(`\n=== qemu exited (${code})\n`);
      this.proc = undefined;
    });
  }

  /** ms since start(). */
  elapsed(): number {
    return Date.now() - this.t0;
  }

  private onSerial(d: Buffer): void {
    this.log?.write(d);
    this.opts.echo?.write(d);
    this.partial += d.toString('utf8');
    let nl: number;
    while ((nl = this.partial.indexOf('\n')) >= 0) {
      // Strip the firmware's terminal escapes and CRs so regexes see plain text.
      const text = this.partial
        .slice(0, nl)
        .replace(/\x1b\[[0-9;=?]*[A-Za-z]/g, '')
        .replace(/\r/g, '');
      this.partial = this.partial.slice(nl + 1);
      const line = { at: this.elapsed(), text };
      this.lines.push(line);
      for (const w of [...this.waiters]) {
        if (this.lines.length - 1 >= w.from && w.re.test(text)) {
          this.waiters = this.waiters.filter((x) => x !== w);
          w.resolve({ line: text, at: line.at });
        }
      }
    }
  }

  /** Line index to pass as `from` to only match output after this point. */
  mark(): number {
    return this.lines.length;
  }

  /** Wait for a serial line matching `re` (from line index `from`); resolves with the ms since start. */
  waitFor(re: RegExp, timeoutMs: number, from = 0): Promise<{ line: string; at: number }> {
    for (let i = from; i < this.lines.length; i++) if (re.test(this.lines[i]!.text)) return Promise.resolve({ line: this.lines[i]!.text, at: this.lines[i]!.at });
    return new Promise((resolve, reject) => {
      const w: Waiter = { re, from, resolve: (m) => (clearTimeout(timer), resolve(m)) };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new VmError(this.name, `timeout after ${timeoutMs} ms waiting for ${re} (log: ${this.serialLog})`));
      }, timeoutMs);
      this.waiters.push(w);
      void this.exited?.then(() => {
        if (!this.waiters.includes(w)) return;
        clearTimeout(timer);
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new VmError(this.name, `QEMU exited while waiting for ${re} (log: ${this.serialLog})`));
      });
    });
  }

  /** Serial text (plain) from line `from`. */
  serialText(from = 0): string {
    return this.lines
      .slice(from)
      .map((l) => l.text)
      .join('\n');
  }

  // ---- test console ------------------------------------------------------------

  private async connectConsole(timeoutMs: number): Promise<Socket> {
    if (this.con && !this.con.destroyed) return this.con;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const s = await new Promise<Socket>((resolve, reject) => {
          const c = connect(this.testSocket);
          c.once('connect', () => resolve(c));
          c.once('error', reject);
        });
        s.setEncoding('utf8');
        s.on('data', (d: string) => (this.conBuf += d));
        s.on('close', () => {
          if (this.con === s) this.con = undefined;
        });
        this.con = s;
        return s;
      } catch (e) {
        if (Date.now() > deadline) throw new VmError(this.name, `test console ${this.testSocket}: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /**
   * Run a shell command in the guest (test console). Commands are serialised.
   * Until the guest's shell is there, the first command is retried: the
   * port's other end opens only once the image's init started it.
   */
  exec(cmd: string, timeoutMs = 30_000): Promise<ExecResult> {
    const run = this.conQueue.then(() => this.execNow(cmd, timeoutMs));
    this.conQueue = run.catch(() => undefined);
    return run;
  }

  private async execNow(cmd: string, timeoutMs: number): Promise<ExecResult> {
    const deadline = Date.now() + timeoutMs;
    const s = await this.connectConsole(timeoutMs);
    const id = `${process.pid}x${++this.conSeq}`;
    const end = new RegExp(`__PQEND_${id}_(\\d+)__`);
    const begin = `__PQBEGIN_${id}__\n`;
    // A subshell keeps `exit` or `cd` in a command from killing the console shell.
    // The image's busybox sh prefers its applets to $PATH: `ip` must be iproute2's.
    // The begin marker tells a shell that got the command from one that did not:
    // only the latter may be sent the command again (a silent long command must not run twice).
    const payload = `echo "__PQBEGIN_${id}__"; ( ip() { /usr/sbin/ip "$@"; }\n${cmd}\n) 2>&1; echo "__PQEND_${id}_$?__"\n`;
    this.conBuf = '';
    s.write(payload);
    let resent = Date.now();
    for (;;) {
      const m = end.exec(this.conBuf);
      if (m) {
        // The guest may echo nothing (no tty): output is everything between the markers.
        const b = this.conBuf.lastIndexOf(begin, m.index);
        const output = this.conBuf.slice(b >= 0 ? b + begin.length : 0, m.index).replace(/\r/g, '');
        this.conBuf = this.conBuf.slice(m.index + m[0].length);
        return { code: Number(m[1]), output };
      }
      if (Date.now() > deadline) throw new VmError(this.name, `command timed out after ${timeoutMs} ms: ${cmd}\n${this.conBuf.slice(-2000)}`);
      // Nobody listening yet on the guest side: bytes written before the shell opened the port are lost; resend.
      if (!this.conBuf.includes(begin) && Date.now() - resent > 3000) {
        s.write(payload);
        resent = Date.now();
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** exec() that must succeed (exit 0). */
  async sh(cmd: string, timeoutMs = 30_000): Promise<string> {
    const r = await this.exec(cmd, timeoutMs);
    if (r.code !== 0) throw new VmError(this.name, `\`${cmd}\` exited ${r.code}: ${r.output.trim().slice(-2000)}`);
    return r.output;
  }

  /** Write a file in the guest (base64 through the test console). */
  async writeFile(path: string, content: string | Uint8Array, mode = '600'): Promise<void> {
    const b64 = Buffer.from(content).toString('base64');
    const chunks = b64.match(/.{1,3000}/g) ?? [''];
    await this.sh(`: > ${path}.b64`);
    for (const c of chunks) await this.sh(`echo '${c}' >> ${path}.b64`);
    await this.sh(`base64 -d ${path}.b64 > ${path}.tmp && rm ${path}.b64 && chmod ${mode} ${path}.tmp && mv ${path}.tmp ${path} && sync`);
  }

  // ---- power -------------------------------------------------------------------

  running(): boolean {
    return this.proc !== undefined;
  }

  /** QEMU's process id while it runs (its CPU time is in /proc/<pid>/stat). */
  pid(): number | undefined {
    return this.proc?.pid;
  }

  /**
   * Wait for QEMU to exit by itself (the guest powered off), then close the
   * serial log; start() may be called again on the same disk afterwards.
   */
  async waitExit(timeoutMs: number): Promise<number | null> {
    if (!this.proc || !this.exited) return null;
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([
      this.exited,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new VmError(this.name, `QEMU still running ${timeoutMs} ms after power-off (log: ${this.serialLog})`)), timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
    this.con?.destroy();
    this.con = undefined;
    await new Promise<void>((r) => (this.log ? this.log.end(r) : r()));
    this.log = undefined;
    return code;
  }

  /** Stop QEMU (SIGTERM, then SIGKILL). The guest gets no shutdown: like pulling the plug. */
  async kill(): Promise<void> {
    this.con?.destroy();
    this.con = undefined;
    const p = this.proc;
    if (!p) return;
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(t);
    await new Promise<void>((r) => (this.log ? this.log.end(r) : r()));
    this.log = undefined;
  }
}
