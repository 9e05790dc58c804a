/**
 * Control methods for operating the gateway (api.ts): status, per-tunnel
 * commands, metrics, logs, key export, system. The configuration methods
 * are in methods-config.ts.
 */
import type { ControlApi, ControlMethod, TunnelStatus } from '../control/api.js';
import { ControlError, ControlErrorCode } from '../control/protocol.js';
import { noSuchTunnel, tunnelCommand, tunnelParam, versionInfo } from '../control/daemon-methods.js';
import { formatMetrics } from '../store/metrics.js';
import type { Command } from '../ikev2/engine-types.js';
import type { Appliance } from './appliance.js';
import { EVENT_LEVELS, type EventLevel } from './events.js';
import { systemInfo } from './system.js';
import { actor, obj, optActor, optBool, optInt, optStr } from './params.js';

export type Handler<M extends ControlMethod> = (params: unknown) => ControlApi[M][1] | Promise<ControlApi[M][1]>;
export type Handlers<K extends ControlMethod> = { [M in K]: Handler<M> };

type OpsMethod =
  | 'version' | 'status' | 'status.tunnels' | 'up' | 'down' | 'rekey-ike' | 'rekey-child' | 'reset' | 'dpd' | 'reload' | 'metrics'
  | 'logs.events' | 'logs.audit' | 'keys.export' | 'keys.capture' | 'system.info' | 'system.reboot' | 'system.factoryReset';

/** Names of every tunnel in the configuration (disabled ones too), else the running ones. */
export function configuredTunnels(app: Appliance): string[] {
  return app.store ? app.store.getDocument().tunnels.map((t) => t.name) : app.daemon.config.tunnels.map((t) => t.name);
}

export function opsMethods(app: Appliance): Handlers<OpsMethod> {
  const d = () => app.daemon;
  const cmd =
    (kind: Command['kind']) =>
    (params: unknown): { ok: true } => {
      const r = tunnelCommand(d(), kind, params);
      const who = optActor(obj(params));
      if (kind === 'up' || kind === 'down') app.events.append({ level: 'info', tunnel: r.tunnel, message: `${kind === 'up' ? 'brought up' : 'taken down'} by ${who ?? 'an operator'}` });
      return r;
    };
  return {
    version: () => ({ ...(versionInfo(d()) as { version: string; protocol: 1 }), configSource: app.store ? 'store' : 'file' }),
    status: () => d().statusWithCounters(),
    'status.tunnels': async (): Promise<TunnelStatus> => {
      const sas = await d().statusWithCounters();
      const enabled = new Set(d().config.tunnels.map((t) => t.name));
      const idle = configuredTunnels(app)
        .filter((n) => !sas.some((s) => s.tunnel === n))
        // The engine does not say when it will retry (engine.ts keeps that private): nextAttemptAt stays null.
        .map((tunnel) => ({ tunnel, lastError: enabled.has(tunnel) ? app.telemetry.lastError(tunnel) : 'disabled in the configuration', nextAttemptAt: null }));
      return { sas, idle, now: d().uptime().now };
    },
    up: cmd('up'),
    down: cmd('down'),
    'rekey-ike': cmd('rekey-ike'),
    'rekey-child': cmd('rekey-child'),
    dpd: cmd('dpd'),
    reset: async (params) => {
      d().assertRunning();
      const tunnel = tunnelParam(params);
      if (!d().hasTunnel(tunnel)) throw noSuchTunnel(tunnel, d().config.tunnels.map((t) => t.name));
      app.events.append({ level: 'info', tunnel, message: `reset by ${optActor(obj(params)) ?? 'an operator'}` });
      await app.resetTunnel(tunnel);
      return { ok: true };
    },
    reload: async () => {
      d().assertRunning();
      const r = await app.reconcile('reload');
      return { tunnels: r.tunnels.length, names: r.tunnels, restartRequired: r.restartRequired };
    },
    metrics: async () => {
      const st = await d().statusWithCounters();
      return { text: formatMetrics(st, app.telemetry.counters(st, d().config.tunnels.map((t) => t.name))) };
    },

    'logs.events': (params) => {
      const p = obj(params);
      const level = optStr(p, 'level', { max: 16 });
      if (level !== undefined && !EVENT_LEVELS.includes(level as EventLevel)) throw new ControlError(ControlErrorCode.INVALID_PARAMS, `params.level must be one of ${EVENT_LEVELS.join(', ')}`);
      const limit = optInt(p, 'limit', 1, 10_000);
      const beforeId = optInt(p, 'beforeId', 1, Number.MAX_SAFE_INTEGER);
      const afterId = optInt(p, 'afterId', 0, Number.MAX_SAFE_INTEGER);
      const tunnel = optStr(p, 'tunnel', { max: 64 });
      return app.events.list({
        ...(limit !== undefined ? { limit } : {}),
        ...(beforeId !== undefined ? { beforeId } : {}),
        ...(afterId !== undefined ? { afterId } : {}),
        ...(tunnel !== undefined ? { tunnel } : {}),
        ...(level !== undefined ? { level: level as EventLevel } : {}),
      });
    },
    'logs.audit': (params) => {
      const p = obj(params);
      const limit = optInt(p, 'limit', 1, 10_000);
      const beforeId = optInt(p, 'beforeId', 1, Number.MAX_SAFE_INTEGER);
      return app
        .requireStore()
        .auditLog({ ...(limit !== undefined ? { limit } : {}), ...(beforeId !== undefined ? { beforeId } : {}) })
        .map((a) => ({ id: a.id, ts: a.ts, actor: a.actor, action: a.action, detail: `${a.target ?? ''}${a.detail ? ` ${JSON.stringify(a.detail)}` : ''}`.trim() }));
    },

    'keys.export': (params) => {
      const who = actor(obj(params));
      if (!app.keys.enabled)
        throw new ControlError('ERR_KEY_CAPTURE_OFF', 'key capture is off, so the daemon holds no keys: run `pqgate keys capture on --rekey` (captures the keys of every SA from then on), then export');
      const r = app.keys.export(d().status());
      app.events.append({ level: 'warn', message: `session keys exported by ${who} (${app.keys.counts().ike} IKE SAs, ${app.keys.counts().esp} ESP SAs)` });
      return r;
    },
    'keys.capture': (params) => {
      const p = obj(params);
      const who = actor(p);
      const enabled = optBool(p, 'enabled');
      if (enabled === undefined) throw new ControlError(ControlErrorCode.INVALID_PARAMS, 'params.enabled (true or false) is required');
      const was = app.keys.enabled;
      app.keys.setEnabled(enabled);
      if (was !== enabled) app.events.append({ level: 'warn', message: `key capture ${enabled ? 'switched on' : 'switched off (captured keys wiped)'} by ${who}` });
      if (enabled && optBool(p, 'rekey')) app.rekeyAll();
      return { enabled: app.keys.enabled, since: app.keys.enabledSince, ...app.keys.counts() };
    },

    'system.info': async () => {
      const info = systemInfo({ daemonUptimeSec: d().uptime().uptimeMs / 1000, dataPlane: d().dataPlaneName, slot: app.slot });
      // With an upgrade backend the slots are the device's own view (versions of both, trial/bad states, last outcome).
      if (!app.upgrade.backend) return info;
      const u = await app.upgrade.status();
      const active = u.slots.find((s) => s.active);
      const o = u.lastOutcome;
      return {
        ...info,
        firmware: {
          active: active?.name ?? info.firmware?.active ?? '?',
          slots: u.slots.map((s) => ({ name: s.name, version: s.version ?? (s.state === 'empty' ? '-' : 'unknown'), state: s.active ? `active, ${s.state}` : s.state })),
          lastUpgrade: o ? `${o.at}: ${o.fromVersion} → ${o.toVersion} ${o.result}${o.reason ? ` (${o.reason})` : ''}` : null,
        },
      };
    },
    'system.reboot': (params) => {
      const who = actor(obj(params));
      if (!app.isAppliance)
        throw new ControlError('ERR_NOT_APPLIANCE', 'reboot is only available on the pqgate appliance image; this daemon runs on a general-purpose host (restart the daemon, or reboot the host with its own tools)');
      // Answer first: the reboot takes the daemon (and this connection) down.
      setTimeout(() => void app.reboot(who).catch((e: unknown) => app.log.error('reboot failed', { error: e })), 200);
      return { ok: true };
    },
    'system.factoryReset': async (params) => {
      const p = obj(params);
      const who = actor(p);
      if (p.confirm !== 'FACTORY RESET') throw new ControlError(ControlErrorCode.INVALID_PARAMS, "params.confirm must be exactly 'FACTORY RESET'");
      await app.factoryReset(who);
      // On the image the whole data partition (logs, spool, upgrade state) is wiped at the next boot, before anything mounts it.
      const backend = app.upgrade.backend;
      if (!backend) return { ok: true };
      await backend.scheduleFactoryReset();
      setTimeout(() => void backend.reboot().catch((e: unknown) => app.log.error('reboot after factory reset failed', { error: e })), 300);
      return { ok: true, rebooting: true };
    },
  };
}
