#!/usr/bin/env node
/**
 * `pqgate` command line (docs/cli.md): the daemon and its client.
 *
 *   pqgate daemon (--db PATH | --config FILE | --default-config) [options]
 *   pqgate status | up | down | reset | rekey | logs | metrics | keys | users | system | config ... | version
 *   pqgate check-config FILE
 *
 * Client commands talk to the daemon over its control socket (--socket
 * PATH, default $PQGATE_SOCKET, else /run/pqgate/control.sock for root).
 * Exit codes: 0 ok, 1 error, 2 usage. Command implementations:
 * control/cli-commands.ts and control/cli-config.ts.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { readFileSync, realpathSync } from 'node:fs';
import { loadConfigFile, defaultConfig, configPermissionWarning, ConfigValidationError } from './config/schema.js';
import { ControlError } from './control/protocol.js';
import { Logger, isLogLevel, type LogFormat } from './log.js';
import type { DaemonConfig } from './config/types.js';
import { EXIT_ERROR, EXIT_OK, EXIT_USAGE, UsageError, checkFlags, flag, parseArgs, type CliIo, type Parsed } from './control/cli-args.js';
import { cmdKeys, cmdLogs, cmdMetrics, cmdReload, cmdStatus, cmdSystem, cmdTunnel, cmdUsers, cmdVersion } from './control/cli-commands.js';
import { cmdConfig } from './control/cli-config.js';
import { cmdFactoryReset, cmdUpgrade } from './control/cli-upgrade.js';
import { packageVersion } from './appliance/version.js';

export { EXIT_OK, EXIT_ERROR, EXIT_USAGE, type CliIo };

const defaultIo: CliIo = {
  out: (s) => void process.stdout.write(s),
  err: (s) => void process.stderr.write(s),
  env: process.env,
};

export const USAGE = `usage: pqgate <command> [options]

running the gateway:
  daemon --db PATH [--initial-config FILE]   on the configuration store (revisions, users, web admin)
  daemon --config FILE | --default-config    stateless, from a JSON file (docs/config.md)
         [--socket PATH] [--web-socket PATH|none] [--web-group NAME] [--log-level LEVEL]
         [--log-format text|json] [--syslog auto|on|off] [--key-capture] [--data-plane userspace|recording]
         foreground; SIGTERM/SIGINT stop it, SIGHUP reloads
  check-config [--json] FILE                 validate a configuration file (no daemon needed)

status and tunnels:
  status [--json]                            every IKE SA and Child SA, idle tunnels with their last error
  up NAME | down NAME | reset NAME           initiate / delete (and stop re-initiating) / delete and re-initiate
  rekey NAME [--child] | dpd NAME            rekey the IKE SA (or the Child SAs) / liveness check
  logs [--follow] [--tunnel NAME] [--level LEVEL] [--limit N] [--json] [--audit]
  metrics                                    Prometheus text
  keys capture on|off [--rekey]              keep the current session keys in memory (off: wiped)
  keys export [--out DIR]                    those keys in Wireshark's formats (support cases)

configuration (store mode):
  config get [--json] | export [--include-secrets] [--out FILE] | history [--limit N] | pending | presets
  config set FILE | import FILE | validate FILE          (FILE - = standard input)
  config diff [FROM [TO]] | rollback REV | confirm | cancel
  config tunnel add NAME [--preset P] [--param K=V]... [--set K=V]... [--psk-file FILE]
  config tunnel set NAME [--set K=V]... [--unset K]... [--psk-file FILE] | config tunnel delete NAME
      changes take [--comment TEXT] [--confirm-timeout SEC] (commit confirmed: rolls back unless confirmed)
  users list | add NAME | passwd NAME | delete NAME  [--password-file FILE]
  system info [--json] | reboot | factory-reset --confirm 'FACTORY RESET'
  factory-reset --yes                        the same (on the image: reboots and wipes the data partition)

firmware (docs/upgrade.md):
  upgrade FILE.pqb [--reboot]                verify (signatures, board, version) and install in the inactive slot
  upgrade status [--json] | keylist FILE     slots, versions, last outcome / install a newer signing key list
  bundle keygen|sign-keylist|trust|make|inspect|verify ...   release tooling (pqgate bundle help)
  reload | version [--json]

options for client commands:
  --socket PATH           control socket (default: $PQGATE_SOCKET or /run/pqgate/control.sock)

exit codes: 0 ok, 1 error, 2 usage
`;

const CHANGE = ['--comment', '--confirm-timeout'];
/** Flags per command (the first word; `config`, `keys`... check their own sub-commands' arguments). */
const FLAGS: Record<string, string[]> = {
  daemon: ['--db', '--initial-config', '--config', '--default-config', '--socket', '--web-socket', '--web-group', '--log-level', '--log-format', '--syslog', '--key-capture', '--appliance', '--data-plane'],
  status: ['--json'],
  up: [],
  down: ['--sa'],
  reset: [],
  dpd: ['--sa'],
  rekey: ['--child', '--sa', '--reqid'],
  reload: [],
  version: ['--json'],
  'check-config': ['--json'],
  logs: ['--follow', '--tunnel', '--level', '--limit', '--json', '--audit'],
  metrics: [],
  keys: ['--out', '--rekey'],
  users: ['--password-file', '--json'],
  system: ['--json', '--confirm'],
  upgrade: ['--json', '--reboot'],
  'factory-reset': ['--yes'],
  config: ['--json', '--include-secrets', '--out', '--limit', '--preset', '--param', '--set', '--unset', '--psk-file', ...CHANGE],
};
const CLIENT = new Set(Object.keys(FLAGS).filter((c) => c !== 'daemon' && c !== 'check-config'));

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
  if (p.positional.length) throw new UsageError('daemon takes no arguments');
  const db = flag(p, '--db');
  const file = flag(p, '--config');
  const useDefault = p.flags.has('--default-config');
  if ([db !== undefined, file !== undefined, useDefault].filter(Boolean).length !== 1) throw new UsageError('daemon needs exactly one of --db PATH, --config FILE or --default-config');
  const initial = flag(p, '--initial-config');
  if (initial !== undefined && db === undefined) throw new UsageError('--initial-config goes with --db');
  const fmt = flag(p, '--log-format') ?? io.env.PQGATE_LOG_FORMAT ?? 'text';
  if (fmt !== 'text' && fmt !== 'json') throw new UsageError('--log-format must be text or json');
  const lvl = flag(p, '--log-level');
  if (lvl !== undefined && !isLogLevel(lvl)) throw new UsageError('--log-level must be one of error, warn, info, debug, trace');
  const syslogMode = flag(p, '--syslog') ?? 'auto';
  if (!['auto', 'on', 'off'].includes(syslogMode)) throw new UsageError('--syslog must be auto, on or off');
  const dataPlaneKind = flag(p, '--data-plane');
  if (dataPlaneKind !== undefined && dataPlaneKind !== 'userspace' && dataPlaneKind !== 'recording') throw new UsageError('--data-plane must be userspace or recording');

  let config: DaemonConfig | undefined;
  let initialDocument: unknown;
  try {
    if (file !== undefined) config = loadConfigFile(file, { env: io.env });
    else if (useDefault) config = defaultConfig({ env: io.env });
    if (initial !== undefined) initialDocument = readFileSync(initial, 'utf8');
  } catch (e) {
    if (e instanceof ConfigValidationError) {
      io.err(`${file ?? 'default config'}: ${e.message}\n`);
      return EXIT_ERROR;
    }
    throw e;
  }
  const configured = config?.logLevel ?? 'info';
  const logger = new Logger({ level: isLogLevel(lvl) ? lvl : configured, format: fmt as LogFormat, sink: (l) => io.out(l + '\n') });
  if (file !== undefined) {
    const w = configPermissionWarning(file);
    if (w) logger.warn(w);
  }
  const { startAppliance } = await import('./appliance/launch.js');
  const app = await startAppliance({
    logger,
    env: io.env,
    syslog: syslogMode as 'auto' | 'on' | 'off',
    keyCapture: p.flags.has('--key-capture'),
    ...(p.flags.has('--appliance') ? { appliance: true } : {}),
    ...(db !== undefined ? { db: resolve(db), ...(initialDocument !== undefined ? { initialDocument } : {}) } : { config: config!, ...(file !== undefined ? { configPath: resolve(file) } : {}) }),
    ...(flag(p, '--socket') !== undefined ? { controlSocket: resolve(flag(p, '--socket')!) } : {}),
    ...(flag(p, '--web-socket') !== undefined ? { webSocket: flag(p, '--web-socket') === 'none' ? null : resolve(flag(p, '--web-socket')!) } : {}),
    ...(flag(p, '--web-group') !== undefined ? { webGroupName: flag(p, '--web-group')! } : {}),
    ...(dataPlaneKind !== undefined ? { dataPlaneKind: dataPlaneKind as 'userspace' | 'recording' } : {}),
    levelOverridden: lvl !== undefined,
  });
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
      app.stop(sig).then(
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
      app.reconcile('SIGHUP').catch((e: unknown) => logger.error('reload failed; keeping the running configuration', { error: e }));
    };
    signals.on('SIGTERM', onStop);
    signals.on('SIGINT', onStop);
    signals.on('SIGHUP', onHup);
  });
}

/** Run the CLI; resolves to the exit code. Never throws. */
export async function main(argv: string[], io: CliIo = defaultIo): Promise<number> {
  // Release tooling has its own options (firmware/upgrade/bundle-cli.ts) and needs no daemon.
  if (argv[0] === 'bundle') return (await import('./upgrade/bundle-cli.js')).bundleMain(argv.slice(1), io);
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
  const known = FLAGS[cmd];
  if (!known) {
    io.err(`pqgate: unknown command '${cmd}'\n\n${USAGE}`);
    return EXIT_USAGE;
  }
  try {
    checkFlags(p, cmd, CLIENT.has(cmd) ? [...known, '--socket'] : known);
    switch (cmd) {
      case 'daemon':
        return await cmdDaemon(p, io);
      case 'check-config':
        return cmdCheckConfig(p, io);
      case 'status':
        return await cmdStatus(p, io);
      case 'up':
      case 'down':
      case 'reset':
      case 'dpd':
      case 'rekey':
        return await cmdTunnel(cmd, p, io);
      case 'reload':
        return await cmdReload(p, io);
      case 'version':
        return await cmdVersion(p, io, packageVersion());
      case 'logs':
        return await cmdLogs(p, io);
      case 'metrics':
        return await cmdMetrics(p, io);
      case 'keys':
        return await cmdKeys(p, io);
      case 'users':
        return await cmdUsers(p, io);
      case 'system':
        return await cmdSystem(p, io);
      case 'config':
        return await cmdConfig(p, io);
      case 'upgrade':
        return await cmdUpgrade(p, io);
      case 'factory-reset':
        return await cmdFactoryReset(p, io);
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
