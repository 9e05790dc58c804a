#!/usr/bin/env node
/**
 * `pqgate` command line (docs/cli.md).
 *
 *   pqgate daemon (--config FILE | --default-config) [--socket PATH] [--log-level L] [--log-format text|json]
 *   pqgate status [--json]        pqgate up NAME        pqgate down NAME
 *   pqgate reload                 pqgate version        pqgate check-config FILE
 *
 * Client commands take --socket PATH (default: $PQGATE_SOCKET, else
 * /run/pqgate/control.sock for root). Exit codes: 0 ok, 1 error, 2 usage.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { realpathSync } from 'node:fs';
import { loadConfigFile, defaultConfig, configPermissionWarning, ConfigValidationError } from './config/schema.js';
import { defaultControlSocket } from './config/defaults.js';
import { ControlClient } from './control/client.js';
import { ControlError } from './control/protocol.js';
import { formatStatus } from './control/format.js';
import { Logger, isLogLevel, type LogFormat } from './log.js';
import type { IkeSaStatus } from './ikev2/engine-types.js';
import type { DaemonConfig } from './config/types.js';

export const EXIT_OK = 0;
export const EXIT_ERROR = 1;
export const EXIT_USAGE = 2;

export interface CliIo {
  out: (s: string) => void;
  err: (s: string) => void;
  env: NodeJS.ProcessEnv;
  /** Signal hookup for `daemon` (tests pass their own emitter). */
  signals?: Pick<NodeJS.Process, 'on' | 'off'>;
}

const defaultIo: CliIo = {
  out: (s) => void process.stdout.write(s),
  err: (s) => void process.stderr.write(s),
  env: process.env,
};

export const USAGE = `usage: pqgate <command> [options]

commands:
  daemon --config FILE | --default-config [--socket PATH] [--log-level LEVEL] [--log-format text|json]
                          run the gateway (foreground; SIGTERM/SIGINT stop it, SIGHUP reloads)
  status [--json]         IKE and Child SAs
  up NAME                 initiate tunnel NAME
  down NAME               delete tunnel NAME's SAs and stop re-initiating it
  reload                  re-read the configuration file
  version                 daemon and CLI versions
  check-config FILE       validate a configuration file and print every error

options for client commands:
  --socket PATH           control socket (default: $PQGATE_SOCKET or /run/pqgate/control.sock)

exit codes: 0 ok, 1 error, 2 usage
`;

class UsageError extends Error {}

interface Parsed {
  positional: string[];
  flags: Map<string, string | true>;
}

/** Flags that take a value; everything else starting with -- is boolean. */
const VALUE_FLAGS = new Set(['--config', '--socket', '--log-level', '--log-format']);
const KNOWN_FLAGS: Record<string, string[]> = {
  daemon: ['--config', '--default-config', '--socket', '--log-level', '--log-format'],
  status: ['--json', '--socket'],
  up: ['--socket'],
  down: ['--socket'],
  reload: ['--socket'],
  version: ['--socket', '--json'],
  'check-config': ['--json'],
};

function parseArgs(args: string[]): Parsed {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      positional.push(...args.slice(i + 1));
      break;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq > 0 ? a.slice(0, eq) : a;
      if (VALUE_FLAGS.has(name)) {
        const v = eq > 0 ? a.slice(eq + 1) : args[++i];
        if (v === undefined || v === '') throw new UsageError(`${name} needs a value`);
        flags.set(name, v);
      } else {
        if (eq > 0) throw new UsageError(`${name} takes no value`);
        flags.set(name, true);
      }
    } else if (a.startsWith('-') && a !== '-') {
      if (a === '-h') flags.set('--help', true);
      else throw new UsageError(`unknown option ${a}`);
    } else positional.push(a);
  }
  return { positional, flags };
}

function socketPath(p: Parsed, io: CliIo): string {
  const s = p.flags.get('--socket');
  return typeof s === 'string' ? resolve(s) : defaultControlSocket(io.env);
}

async function withClient<T>(p: Parsed, io: CliIo, fn: (c: ControlClient) => Promise<T>): Promise<T> {
  const c = await ControlClient.connect(socketPath(p, io));
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

interface VersionReply {
  version: string;
  now: number;
  tunnels?: string[];
  uptimeMs?: number;
  node?: string;
  dataPlane?: string;
}

async function cmdStatus(p: Parsed, io: CliIo): Promise<number> {
  return withClient(p, io, async (c) => {
    const sas = await c.call<IkeSaStatus[]>('status');
    if (p.flags.has('--json')) {
      io.out(JSON.stringify(sas, null, 2) + '\n');
      return EXIT_OK;
    }
    const v = await c.call<VersionReply>('version');
    io.out(formatStatus(sas, { now: v.now, configured: v.tunnels }));
    return EXIT_OK;
  });
}

async function cmdTunnel(method: 'up' | 'down', p: Parsed, io: CliIo): Promise<number> {
  if (p.positional.length !== 1) throw new UsageError(`${method} needs exactly one tunnel name`);
  const tunnel = p.positional[0]!;
  await withClient(p, io, (c) => c.call(method, { tunnel }));
  io.out(`${method === 'up' ? 'initiating' : 'deleting'} ${tunnel}\n`);
  return EXIT_OK;
}

async function cmdReload(p: Parsed, io: CliIo): Promise<number> {
  const r = await withClient(p, io, (c) => c.call<{ tunnels: string[]; restartRequired: string[] }>('reload'));
  io.out(`reloaded: ${r.tunnels.length} tunnel${r.tunnels.length === 1 ? '' : 's'}${r.tunnels.length ? ` (${r.tunnels.join(', ')})` : ''}\n`);
  if (r.restartRequired.length) io.out(`restart needed for: ${r.restartRequired.join(', ')}\n`);
  return EXIT_OK;
}

async function cmdVersion(p: Parsed, io: CliIo): Promise<number> {
  const { packageVersion } = await import('./daemon.js');
  const cli = packageVersion();
  try {
    const v = await withClient(p, io, (c) => c.call<VersionReply>('version'));
    if (p.flags.has('--json')) io.out(JSON.stringify({ cli, daemon: v }, null, 2) + '\n');
    else io.out(`pqgate ${cli}\ndaemon ${v.version} (node ${v.node ?? '?'}, up ${Math.round((v.uptimeMs ?? 0) / 1000)}s, data plane ${v.dataPlane ?? '?'})\n`);
    return EXIT_OK;
  } catch (e) {
    io.out(`pqgate ${cli}\n`);
    throw e;
  }
}

function cmdCheckConfig(p: Parsed, io: CliIo): number {
  if (p.positional.length !== 1) throw new UsageError('check-config needs exactly one file');
  const file = p.positional[0]!;
  try {
    const cfg = loadConfigFile(file, { env: io.env });
    const warn = configPermissionWarning(file);
    if (p.flags.has('--json')) io.out(JSON.stringify({ ok: true, tunnels: cfg.tunnels.map((t) => t.name), warnings: warn ? [warn] : [] }) + '\n');
    else {
      io.out(`${file}: OK, ${cfg.tunnels.length} tunnel${cfg.tunnels.length === 1 ? '' : 's'}${cfg.tunnels.length ? ` (${cfg.tunnels.map((t) => t.name).join(', ')})` : ''}\n`);
      if (warn) io.err(`warning: ${warn}\n`);
    }
    return EXIT_OK;
  } catch (e) {
    if (!(e instanceof ConfigValidationError)) throw e;
    if (p.flags.has('--json')) io.out(JSON.stringify({ ok: false, errors: e.errors.map((x) => ({ path: x.path, message: x.message.slice(x.path.length + 2) })) }) + '\n');
    else io.err(`${file}: ${e.message}\n`);
    return EXIT_ERROR;
  }
}

async function cmdDaemon(p: Parsed, io: CliIo): Promise<number> {
  const file = p.flags.get('--config');
  const useDefault = p.flags.has('--default-config');
  if ((typeof file === 'string') === useDefault) throw new UsageError('daemon needs exactly one of --config FILE or --default-config');
  const fmt = p.flags.get('--log-format') ?? io.env.PQGATE_LOG_FORMAT ?? 'text';
  if (fmt !== 'text' && fmt !== 'json') throw new UsageError('--log-format must be text or json');
  const lvl = p.flags.get('--log-level');
  if (lvl !== undefined && !isLogLevel(lvl)) throw new UsageError('--log-level must be one of error, warn, info, debug, trace');

  let config: DaemonConfig;
  try {
    config = typeof file === 'string' ? loadConfigFile(file, { env: io.env }) : defaultConfig({ env: io.env });
  } catch (e) {
    if (e instanceof ConfigValidationError) {
      io.err(`${typeof file === 'string' ? file : 'default config'}: ${e.message}\n`);
      return EXIT_ERROR;
    }
    throw e;
  }
  const sock = p.flags.get('--socket');
  if (typeof sock === 'string') config.controlSocket = resolve(sock);
  const logger = new Logger({ level: isLogLevel(lvl) ? lvl : config.logLevel, format: fmt as LogFormat, sink: (l) => io.out(l + '\n') });
  if (typeof file === 'string') {
    const w = configPermissionWarning(file);
    if (w) logger.warn(w);
  }
  const { Daemon } = await import('./daemon.js');
  const daemon = await Daemon.start({ config, configPath: typeof file === 'string' ? resolve(file) : undefined, logger, env: io.env });
  const signals = io.signals ?? process;
  return new Promise<number>((done) => {
    let stopping = false;
    const onStop = (sig: NodeJS.Signals) => {
      if (stopping) {
        // Second signal: the operator insists.
        logger.warn(`${sig} again: exiting without waiting`);
        done(EXIT_ERROR);
        return;
      }
      stopping = true;
      logger.info(`${sig} received`);
      daemon.stop(sig).then(
        () => {
          signals.off('SIGTERM', onStop);
          signals.off('SIGINT', onStop);
          signals.off('SIGHUP', onHup);
          done(EXIT_OK);
        },
        (e: unknown) => {
          logger.error('shutdown failed', { error: e });
          done(EXIT_ERROR);
        },
      );
    };
    const onHup = () => {
      daemon.reload().catch((e: unknown) => logger.error('reload failed; keeping the running configuration', { error: e }));
    };
    signals.on('SIGTERM', onStop);
    signals.on('SIGINT', onStop);
    signals.on('SIGHUP', onHup);
  });
}

/** Run the CLI; resolves to the exit code. Never throws. */
export async function main(argv: string[], io: CliIo = defaultIo): Promise<number> {
  let p: Parsed;
  try {
    p = parseArgs(argv);
  } catch (e) {
    io.err(`pqgate: ${(e as Error).message}\n\n${USAGE}`);
    return EXIT_USAGE;
  }
  const cmd = p.positional.shift();
  if (cmd === undefined || cmd === 'help' || p.flags.has('--help')) {
    (cmd === undefined && !p.flags.has('--help') ? io.err : io.out)(USAGE);
    return cmd === undefined && !p.flags.has('--help') ? EXIT_USAGE : EXIT_OK;
  }
  const known = KNOWN_FLAGS[cmd];
  if (!known) {
    io.err(`pqgate: unknown command '${cmd}'\n\n${USAGE}`);
    return EXIT_USAGE;
  }
  try {
    for (const f of p.flags.keys()) if (!known.includes(f)) throw new UsageError(`${cmd}: unknown option ${f}`);
    switch (cmd) {
      case 'daemon':
        if (p.positional.length) throw new UsageError('daemon takes no arguments');
        return await cmdDaemon(p, io);
      case 'status':
        if (p.positional.length) throw new UsageError('status takes no arguments');
        return await cmdStatus(p, io);
      case 'up':
      case 'down':
        return await cmdTunnel(cmd, p, io);
      case 'reload':
        return await cmdReload(p, io);
      case 'version':
        return await cmdVersion(p, io);
      case 'check-config':
        return cmdCheckConfig(p, io);
    }
    return EXIT_USAGE;
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`pqgate: ${e.message}\n\n${USAGE}`);
      return EXIT_USAGE;
    }
    if (e instanceof ControlError) io.err(`pqgate: ${e.message}${e.code && !e.message.includes(e.code) ? ` [${e.code}]` : ''}\n`);
    else io.err(`pqgate: ${e instanceof Error ? e.message : String(e)}\n`);
    return EXIT_ERROR;
  }
}

/** True when this module is the process's entry point (also through npm's bin symlink). */
function isEntryPoint(): boolean {
  const arg = process.argv[1];
  if (!arg) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(arg)).href;
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
    // Anything still holding the loop after a finished command or a stopped daemon is a leak; do not hang on it.
    setTimeout(() => process.exit(code), 2000).unref();
  });
}
