/**
 * The QEMU command line of a board, from image/boards/<board>/board.json —
 * the one place it is written down; `npm run qemu`, the scenario tests and
 * docs/image.md all use it. Placeholders `${NAME}` are filled per VM.
 */
import { readFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (works from qemu/ under vitest and from dist/qemu/). */
export const REPO = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'image', 'boards'))) return dir;
    dir = dirname(dir);
  }
  throw new Error('cannot find the repository root (image/boards)');
})();

export const BOARDS = ['x86_64', 'arm64'] as const;
export type BoardName = (typeof BOARDS)[number];

export interface Forward {
  name: string;
  proto: 'tcp' | 'udp';
  guest: number;
}

export interface BoardQemu {
  binary: string;
  /**
   * UEFI firmware code and the template of its variable store: absolute host
   * paths (Debian's AAVMF), or paths relative to image/out/<board>/ where the
   * image build puts the board's pinned `firmware` package (OVMF from trixie
   * for x86_64: docs/image.md "Boot time"). Board.firmwareCode/firmwareVars
   * are the resolved paths.
   */
  firmwareCode: string;
  firmwareVars: string;
  args: string[];
  lanArgs: string[];
  testArgs: string[];
  /** Guest ports forwarded to 127.0.0.1 (user-mode networking hostfwd). */
  forwards: Forward[];
}

export interface Board {
  name: BoardName;
  dir: string;
  json: { cmdline: string; qemu: BoardQemu; kernel: { release: string } };
  /** image/out/<board>/ */
  outDir: string;
  disk: string;
  /** qemu.firmwareCode / firmwareVars resolved to absolute paths. */
  firmwareCode: string;
  firmwareVars: string;
}

export function isBoard(s: string): s is BoardName {
  return (BOARDS as readonly string[]).includes(s);
}

export function loadBoard(name: string): Board {
  if (!isBoard(name)) throw new Error(`unknown board '${name}' (${BOARDS.join(', ')})`);
  const dir = join(REPO, 'image', 'boards', name);
  const json = JSON.parse(readFileSync(join(dir, 'board.json'), 'utf8')) as Board['json'];
  const outDir = join(REPO, 'image', 'out', name);
  return {
    name,
    dir,
    json,
    outDir,
    disk: join(outDir, 'disk.img'),
    firmwareCode: resolve(outDir, json.qemu.firmwareCode),
    firmwareVars: resolve(outDir, json.qemu.firmwareVars),
  };
}

/** Fill `${NAME}` placeholders; an empty value also drops a dangling comma (`user,id=wan,${HOSTFWD}`). */
export function substitute(args: readonly string[], vars: Record<string, string>): string[] {
  return args.map((a) => {
    const out = a.replace(/\$\{([A-Z_]+)\}/g, (_, k: string) => {
      const v = vars[k];
      if (v === undefined) throw new Error(`QEMU argument '${a}': no value for \${${k}}`);
      return v;
    });
    return out.replace(/,,+/g, ',').replace(/,$/, '');
  });
}

export interface VmNetwork {
  /** user-mode network of eth0 (default 10.0.2.0/24). */
  wanNet?: string;
  /** 127.0.0.1 host port for each forwarded guest port name. */
  hostPorts?: Record<string, number>;
  /** eth1: a -netdev spec (socket/dgram) joining another VM; omitted = no eth1. */
  lanNetdev?: string;
  lanMac?: string;
  wanMac?: string;
}

/** The full argv (binary first) for one VM. */
export function qemuArgv(board: Board, files: { disk: string; vars: string; serial: string; testSocket?: string }, net: VmNetwork = {}): string[] {
  const q = board.json.qemu;
  const hostfwd = q.forwards
    .filter((f) => net.hostPorts?.[f.name] !== undefined)
    .map((f) => `hostfwd=${f.proto}:127.0.0.1:${net.hostPorts![f.name]}-:${f.guest}`)
    .join(',');
  const vars: Record<string, string> = {
    FIRMWARE_CODE: board.firmwareCode,
    FIRMWARE_VARS: files.vars,
    DISK: resolve(files.disk),
    WAN_NET: net.wanNet ?? '10.0.2.0/24',
    WAN_MAC: net.wanMac ?? '52:54:00:12:34:56',
    HOSTFWD: hostfwd,
    SERIAL: files.serial,
    LAN_NETDEV: net.lanNetdev ?? '',
    LAN_MAC: net.lanMac ?? '52:54:00:12:35:01',
    TEST_SOCKET: files.testSocket ?? '',
  };
  const argv = [q.binary, ...substitute(q.args, vars)];
  if (net.lanNetdev) argv.push(...substitute(q.lanArgs, vars));
  if (files.testSocket) argv.push(...substitute(q.testArgs, vars));
  return argv;
}
