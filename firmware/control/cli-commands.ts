/**
 * `pqgate` client commands for operating the gateway (docs/cli.md):
 * status, per-tunnel actions, logs, metrics, keys, users, system, version.
 * The configuration commands are in cli-config.ts.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IkeSaStatus } from '../ikev2/engine-types.js';
import type { ControlResult, EventEntry } from './api.js';
import { ControlError, ControlErrorCode } from './protocol.js';
import { formatStatus } from './format.js';
import { EXIT_ERROR, EXIT_OK, UsageError, cliActor, flag, intFlag, readPassword, withClient, type CliIo, type Parsed } from './cli-args.js';

interface VersionReply {
  version: string;
  now: number;
  tunnels?: string[];
  uptimeMs?: number;
  node?: string;
  dataPlane?: string;
  configSource?: string;
}

function one(p: Parsed, what: string): string {
  if (p.positional.length !== 1) throw new UsageError(`${what} needs exactly one ${what.includes('users') ? 'user' : 'tunnel'} name`);
  return p.positional[0]!;
}

function none(p: Parsed, what: string): void {
  if (p.positional.length) throw new UsageError(`${what} takes no arguments`);
}

const missing = (e: unknown) => e instanceof ControlError && e.code === ControlErrorCode.METHOD_NOT_FOUND;

export async function cmdStatus(p: Parsed, io: CliIo): Promise<number> {
  none(p, 'status');
  return withClient(p, io, async (c) => {
    if (p.flags.has('--json')) {
      io.out(JSON.stringify(await c.call<IkeSaStatus[]>('status'), null, 2) + '\n');
      return EXIT_OK;
    }
    try {
      const st = await c.call<ControlResult<'status.tunnels'>>('status.tunnels');
      io.out(formatStatus(st.sas, { ...(st.now !== undefined ? { now: st.now } : {}), idle: st.idle }));
    } catch (e) {
      // A bare daemon (embedded without the appliance layer) has only `status`.
      if (!missing(e)) throw e;
      const sas = await c.call<IkeSaStatus[]>('status');
      const v = await c.call<VersionReply>('version');
      io.out(formatStatus(sas, { now: v.now, configured: v.tunnels ?? [] }));
    }
    return EXIT_OK;
  });
}

const VERB: Record<string, string> = { up: 'initiating', down: 'deleting', reset: 'resetting', dpd: 'liveness check of', 'rekey-ike': 'rekeying the IKE SA of', 'rekey-child': 'rekeying the Child SAs of' };

/** up / down / reset / dpd / rekey NAME [--child] [--sa ID] [--reqid N]: per tunnel, or one IKE SA (status id) / one Child SA (reqid). */
export async function cmdTunnel(cmd: string, p: Parsed, io: CliIo): Promise<number> {
  const tunnel = one(p, cmd);
  const reqid = intFlag(p, '--reqid', 1, 2 ** 31);
  const sa = intFlag(p, '--sa', 1, 2 ** 31);
  const method = cmd === 'rekey' ? (p.flags.has('--child') || reqid !== undefined ? 'rekey-child' : 'rekey-ike') : cmd;
  await withClient(p, io, (c) => c.call(method, { tunnel, actor: cliActor(), ...(sa !== undefined ? { sa } : {}), ...(reqid !== undefined ? { child: reqid } : {}) }), 20_000);
  io.out(`${VERB[method] ?? method} ${tunnel}${sa !== undefined ? ` (IKE SA #${sa})` : ''}${reqid !== undefined ? ` (Child SA {${reqid}})` : ''}\n`);
  return EXIT_OK;
}

export async function cmdReload(p: Parsed, io: CliIo): Promise<number> {
  none(p, 'reload');
  const r = await withClient(p, io, (c) => c.call<{ tunnels: number | string[]; names?: string[]; restartRequired?: string[] }>('reload'));
  const names = r.names ?? (Array.isArray(r.tunnels) ? r.tunnels : []);
  const n = typeof r.tunnels === 'number' ? r.tunnels : names.length;
  io.out(`reloaded: ${n} tunnel${n === 1 ? '' : 's'}${names.length ? ` (${names.join(', ')})` : ''}\n`);
  if (r.restartRequired?.length) io.out(`restart needed for: ${r.restartRequired.join(', ')}\n`);
  return EXIT_OK;
}

export async function cmdVersion(p: Parsed, io: CliIo, cli: string): Promise<number> {
  try {
    const v = await withClient(p, io, (c) => c.call<VersionReply>('version'));
    if (p.flags.has('--json')) io.out(JSON.stringify({ cli, daemon: v }, null, 2) + '\n');
    else io.out(`pqgate ${cli}\ndaemon ${v.version} (node ${v.node ?? '?'}, up ${Math.round((v.uptimeMs ?? 0) / 1000)}s, data plane ${v.dataPlane ?? '?'}${v.configSource ? `, configuration from ${v.configSource === 'store' ? 'the store' : 'a file'}` : ''})\n`);
    return EXIT_OK;
  } catch (e) {
    io.out(`pqgate ${cli}\n`);
    throw e;
  }
}

function eventLine(e: EventEntry): string {
  return `${new Date(e.ts).toISOString()} ${e.level.padEnd(5)}${e.tunnel ? ` [${e.tunnel}]` : ''} ${e.message}`;
}

/** logs [--follow] [--tunnel NAME] [--level L] [--limit N] [--json] | logs --audit */
export async function cmdLogs(p: Parsed, io: CliIo): Promise<number> {
  none(p, 'logs');
  const limit = intFlag(p, '--limit', 1, 10_000) ?? 50;
  const json = p.flags.has('--json');
  if (p.flags.has('--audit')) {
    const rows = await withClient(p, io, (c) => c.call<ControlResult<'logs.audit'>>('logs.audit', { limit }));
    for (const a of rows.reverse()) io.out(json ? JSON.stringify(a) + '\n' : `${new Date(a.ts).toISOString()} ${a.actor}: ${a.action} ${a.detail}\n`);
    return EXIT_OK;
  }
  const level = flag(p, '--level');
  const tunnel = flag(p, '--tunnel');
  const q = { ...(level ? { level } : {}), ...(tunnel ? { tunnel } : {}) };
  const print = (list: EventEntry[]) => {
    for (const e of [...list].reverse()) io.out(json ? JSON.stringify(e) + '\n' : eventLine(e) + '\n');
  };
  return withClient(p, io, async (c) => {
    const first = await c.call<EventEntry[]>('logs.events', { ...q, limit });
    print(first);
    if (!p.flags.has('--follow')) return EXIT_OK;
    let last = first[0]?.id ?? 0;
    if (!first.length) {
      // Nothing matched: start after the newest event of any kind.
      last = (await c.call<EventEntry[]>('logs.events', { limit: 1 }))[0]?.id ?? 0;
    }
    let stop = false;
    void io.followUntil?.then(() => (stop = true));
    while (!stop) {
      await new Promise((r) => setTimeout(r, 500));
      const next = await c.call<EventEntry[]>('logs.events', { ...q, limit: 1000, afterId: last });
      if (next.length) {
        print(next);
        last = next[0]!.id;
      }
    }
    return EXIT_OK;
  });
}

export async function cmdMetrics(p: Parsed, io: CliIo): Promise<number> {
  none(p, 'metrics');
  const r = await withClient(p, io, (c) => c.call<{ text: string }>('metrics'));
  io.out(r.text);
  return EXIT_OK;
}

/** keys export [--out DIR] | keys capture on|off [--rekey] */
export async function cmdKeys(p: Parsed, io: CliIo): Promise<number> {
  const [sub, arg, ...rest] = p.positional;
  if (sub === 'capture') {
    if ((arg !== 'on' && arg !== 'off') || rest.length) throw new UsageError('keys capture needs on or off');
    const r = await withClient(p, io, (c) => c.call<ControlResult<'keys.capture'>>('keys.capture', { enabled: arg === 'on', rekey: p.flags.has('--rekey'), actor: cliActor() }));
    io.out(r.enabled ? `key capture on since ${new Date(r.since!).toISOString()}: ${r.ike} IKE SA and ${r.esp} ESP SA key records held${p.flags.has('--rekey') ? ' (every SA is being rekeyed: its new keys will be captured)' : ''}\n` : 'key capture off: no keys held\n');
    return EXIT_OK;
  }
  if (sub !== 'export' || arg !== undefined) throw new UsageError('keys needs `export [--out DIR]` or `capture on|off [--rekey]`');
  const r = await withClient(p, io, (c) => c.call<ControlResult<'keys.export'>>('keys.export', { actor: cliActor() }));
  const dir = flag(p, '--out');
  if (dir === undefined) {
    io.out(`# ikev2_decryption_table\n${r.ikev2_decryption_table}# esp_sa\n${r.esp_sa}`);
    return EXIT_OK;
  }
  // The file names Wireshark reads from a profile directory (docs/cli.md, "Key log").
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const [name, text] of [['ikev2_decryption_table', r.ikev2_decryption_table], ['esp_sa', r.esp_sa]] as const) {
    const f = join(dir, name);
    writeFileSync(f, text, { mode: 0o600 });
    chmodSync(f, 0o600);
  }
  const count = (t: string) => t.split('\n').filter(Boolean).length;
  io.out(`wrote ${count(r.ikev2_decryption_table)} IKE SA and ${count(r.esp_sa)} ESP SA records to ${join(dir, 'ikev2_decryption_table')} and ${join(dir, 'esp_sa')} (session keys: delete after use)\n`);
  return EXIT_OK;
}

/** users add NAME | users list | users delete NAME | users passwd NAME */
export async function cmdUsers(p: Parsed, io: CliIo): Promise<number> {
  const [sub, ...args] = p.positional;
  const q: Parsed = { ...p, positional: args };
  switch (sub) {
    case 'list': {
      none(q, 'users list');
      const rows = await withClient(p, io, (c) => c.call<ControlResult<'users.list'>>('users.list'));
      if (p.flags.has('--json')) io.out(JSON.stringify(rows, null, 2) + '\n');
      else if (!rows.length) io.out('no administrators yet (first-boot setup: `pqgate users add NAME`)\n');
      else for (const u of rows) io.out(`${u.name}  created ${new Date(u.createdAt).toISOString()}${u.lastLoginAt ? `, last login ${new Date(u.lastLoginAt).toISOString()}` : ''}\n`);
      return EXIT_OK;
    }
    case 'add': {
      const name = one(q, 'users add');
      const password = await readPassword(p, io);
      await withClient(p, io, (c) => c.call('users.create', { name, password, actor: cliActor() }), 20_000);
      io.out(`administrator ${name} created\n`);
      return EXIT_OK;
    }
    case 'passwd': {
      const name = one(q, 'users passwd');
      const newPassword = await readPassword(p, io);
      await withClient(p, io, (c) => c.call('users.password', { name, newPassword, actor: cliActor() }), 20_000);
      io.out(`password of ${name} changed\n`);
      return EXIT_OK;
    }
    case 'delete': {
      const name = one(q, 'users delete');
      await withClient(p, io, (c) => c.call('users.delete', { name, actor: cliActor() }));
      io.out(`administrator ${name} deleted\n`);
      return EXIT_OK;
    }
  }
  throw new UsageError('users needs list, add NAME, passwd NAME or delete NAME');
}

/** system info [--json] | system reboot | system factory-reset --confirm 'FACTORY RESET' */
export async function cmdSystem(p: Parsed, io: CliIo): Promise<number> {
  const [sub, ...args] = p.positional;
  if (args.length) throw new UsageError(`system ${sub ?? ''}: unexpected argument`);
  if (sub === 'info') {
    const s = await withClient(p, io, (c) => c.call<ControlResult<'system.info'>>('system.info'));
    if (p.flags.has('--json')) {
      io.out(JSON.stringify(s, null, 2) + '\n');
      return EXIT_OK;
    }
    const mib = (n: number) => `${Math.round(n / 1048576)} MiB`;
    io.out(
      [
        `${s.hostname}: pqgate ${s.version}, up ${Math.round(s.uptimeSec / 60)} min (daemon ${Math.round(s.daemonUptimeSec / 60)} min), data plane ${s.dataPlane}`,
        `cpu: ${s.cpu.model} x${s.cpu.cores}, load ${s.cpu.load.join(' ')}`,
        `memory: ${mib(s.memory.freeBytes)} free of ${mib(s.memory.totalBytes)}, daemon ${mib(s.memory.rssBytes)}`,
        ...s.interfaces.map((i) => `${i.name}: ${i.up ? 'up' : 'down'}${i.mac ? ` ${i.mac}` : ''} ${i.addresses.join(' ')}`.trimEnd()),
        ...s.temperaturesC.map((t) => `${t.label}: ${t.value} °C`),
        s.firmware ? `firmware: slot ${s.firmware.active} active; ${s.firmware.slots.map((x) => `${x.name} ${x.version} (${x.state})`).join(', ')}` : 'firmware: not running from the appliance image',
      ].join('\n') + '\n',
    );
    return EXIT_OK;
  }
  if (sub === 'reboot') {
    await withClient(p, io, (c) => c.call('system.reboot', { actor: cliActor() }));
    io.out('rebooting\n');
    return EXIT_OK;
  }
  if (sub === 'factory-reset') {
    const confirm = flag(p, '--confirm');
    if (confirm !== 'FACTORY RESET') throw new UsageError("system factory-reset erases the configuration, keys, certificates, users and logs: confirm with --confirm 'FACTORY RESET'");
    await withClient(p, io, (c) => c.call('system.factoryReset', { confirm, actor: cliActor() }), 60_000);
    io.out('factory reset done: the gateway is back to its first-boot state\n');
    return EXIT_OK;
  }
  throw new UsageError('system needs info, reboot or factory-reset');
}

export { EXIT_ERROR };
