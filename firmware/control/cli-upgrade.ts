/**
 * `pqgate upgrade FILE [--reboot]`, `pqgate upgrade status [--json]`,
 * `pqgate upgrade keylist FILE`, `pqgate factory-reset --yes`
 * (docs/upgrade.md). The bundle stays where it is: the daemon gets its
 * absolute path and reads it itself.
 */
import { resolve } from 'node:path';
import type { ControlResult } from './api.js';
import type { UpgradeStatus } from '../upgrade/service.js';
import { EXIT_ERROR, EXIT_OK, UsageError, cliActor, withClient, type CliIo, type Parsed } from './cli-args.js';

export const DEV_BANNER = 'DEVELOPMENT BUILD — accepts unsigned firmware';

export function formatUpgradeStatus(s: UpgradeStatus): string {
  const lines: string[] = [];
  if (s.dev) lines.push(`*** ${DEV_BANNER} ***`);
  if (!s.available) lines.push(`firmware upgrades unavailable: ${s.reason ?? 'unknown reason'}`);
  if (s.board) lines.push(`board ${s.board}, running ${s.runningVersion ?? '?'}, security version floor ${s.securityFloor ?? '?'}${s.keyListVersion !== undefined ? `, signing key list version ${s.keyListVersion}` : ''}`);
  for (const sl of s.slots)
    lines.push(
      `slot ${sl.name}: ${sl.version ?? '-'} ${sl.state}${sl.active ? ' (active)' : ''}${sl.state === 'trial' && sl.triesLeft !== undefined ? `, ${sl.triesLeft} boot tries left` : ''}`,
    );
  const o = s.lastOutcome;
  if (o) lines.push(`last upgrade: ${o.at}: ${o.fromVersion} → ${o.toVersion}, ${o.result}${o.result === 'refused' || o.result === 'failed' || o.result === 'rolled-back' ? '' : ` (slot ${o.slot})`}${o.reason ? `: ${o.reason}` : ''}${o.code ? ` [${o.code}]` : ''}`);
  else if (s.available) lines.push('last upgrade: none');
  const p = s.progress;
  if (p.phase !== 'idle' && p.phase !== 'done' && p.phase !== 'failed') lines.push(`in progress: ${p.phase} ${p.total ? Math.floor((100 * p.done) / p.total) : 0}%`);
  return lines.join('\n') + '\n';
}

export async function cmdUpgrade(p: Parsed, io: CliIo): Promise<number> {
  const [sub, ...args] = p.positional;
  if (sub === 'status') {
    if (args.length) throw new UsageError('upgrade status takes no arguments');
    const s = await withClient(p, io, (c) => c.call<ControlResult<'upgrade.status'>>('upgrade.status'));
    io.out(p.flags.has('--json') ? JSON.stringify(s, null, 2) + '\n' : formatUpgradeStatus(s));
    return EXIT_OK;
  }
  if (sub === 'keylist') {
    if (args.length !== 1) throw new UsageError('upgrade keylist needs exactly one key list file');
    const r = await withClient(p, io, (c) => c.call<ControlResult<'upgrade.keylist'>>('upgrade.keylist', { path: resolve(args[0]!), actor: cliActor() }));
    io.out(r.changed ? `signing key list version ${r.version} installed\n` : `key list version ${r.version} was already installed\n`);
    return EXIT_OK;
  }
  if (sub === undefined || args.length) throw new UsageError('upgrade needs FILE.pqb [--reboot], status or keylist FILE');
  const path = resolve(sub);
  return withClient(
    p,
    io,
    async (c) => {
      const started = await c.call<{ id: number }>('upgrade.install', { path, reboot: p.flags.has('--reboot'), wait: false, actor: cliActor() });
      let last = '';
      for (;;) {
        await new Promise((r) => setTimeout(r, 200));
        const s = await c.call<ControlResult<'upgrade.status'>>('upgrade.status');
        const pr = s.progress;
        if (pr.id !== started.id) continue;
        const line = `${pr.phase}${pr.total ? ` ${Math.floor((100 * pr.done) / pr.total / 25) * 25}%` : ''}`;
        if (line !== last && pr.phase !== 'done' && pr.phase !== 'failed') io.err(`${line}\n`);
        last = line;
        if (pr.phase === 'failed') {
          io.err(`pqgate: firmware ${s.lastOutcome?.result === 'failed' ? 'install failed' : 'refused, nothing was written'}: ${pr.error?.message ?? 'unknown error'} [${pr.error?.code ?? '?'}]\n`);
          return EXIT_ERROR;
        }
        if (pr.phase === 'done') {
          const slot = s.slots.find((x) => x.state === 'trial');
          io.out(`firmware ${pr.toVersion ?? ''} installed in slot ${slot?.name ?? '?'} as the trial slot; ${p.flags.has('--reboot') ? 'rebooting now' : 'it boots on the next reboot (pqgate system reboot)'}; it is kept only if its health check passes\n`);
          return EXIT_OK;
        }
      }
    },
    30_000,
  );
}

export async function cmdFactoryReset(p: Parsed, io: CliIo): Promise<number> {
  if (p.positional.length) throw new UsageError('factory-reset takes no arguments');
  if (!p.flags.has('--yes')) throw new UsageError('factory-reset erases the configuration, keys, certificates, users and logs: confirm with --yes');
  const r = await withClient(p, io, (c) => c.call<ControlResult<'system.factoryReset'>>('system.factoryReset', { confirm: 'FACTORY RESET', actor: cliActor() }), 60_000);
  io.out(r.rebooting ? 'factory reset: configuration erased; rebooting, the data partition is wiped at boot\n' : 'factory reset done: the gateway is back to its first-boot state\n');
  return EXIT_OK;
}
