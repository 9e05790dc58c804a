/**
 * The firmware image's daemon entry point (`service daemon` from inittab runs
 * it from the image's bundle lib/daemon.cjs through lib/run.cjs;
 * docs/image.md "Node start-up").
 *
 *   run.cjs daemon --config FILE     file mode (/data/pqgate.json provisioned)
 *   run.cjs daemon --db FILE         store mode: the configuration database
 *
 * It is `pqgate daemon` (firmware/appliance: control socket, web admin socket
 * for group pqgate-web, configuration store) plus the data-plane choice the
 * image needs: unless the configuration names a data plane, the kernel's XFRM
 * is used when this kernel does ESP (probeKernelXfrm), else the daemon's
 * default. PQGATE_DATAPLANE=kernel|default overrides.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadConfigFile, ConfigValidationError } from '../config/schema.js';
import type { DaemonConfig } from '../config/types.js';
import { Logger, isLogLevel } from '../log.js';
import { startAppliance } from './launch.js';
import { createKernelDataPlane, probeKernelXfrm, type XfrmDataPlane } from '../dataplane/xfrm/index.js';
import { imageSlotBackend } from '../upgrade/device-image.js';
import { prepareDatabase } from '../upgrade/device-boot.js';
import { SCHEMA_VERSION } from '../store/schema.js';
import { loadCpuCryptoDrivers } from './cpu-crypto.js';
import { ControlClient } from '../control/client.js';
import { FakeNetwork, FakeTransport } from '../net/fake.js';

const WEB_SOCKET = '/run/pqgate-web/web.sock';

export interface ImageDaemonHooks {
  /** Called once the control socket answers (the bundle runner writes its code cache then). */
  onReady?: () => void;
}

export async function imageDaemonMain(args: string[] = process.argv.slice(2), hooks: ImageDaemonHooks = {}): Promise<void> {
  const arg = (name: string): string | undefined => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const file = arg('--config');
  const db = arg('--db');
  if ((file === undefined) === (db === undefined)) {
    process.stderr.write('usage: run.cjs daemon --config FILE | --db FILE\n');
    process.exit(2);
  }

  let config: DaemonConfig | undefined;
  if (file !== undefined) {
    try {
      config = loadConfigFile(file, { env: process.env });
    } catch (e) {
      process.stderr.write(`${file}: ${e instanceof ConfigValidationError ? e.message : String(e)}\n`);
      process.exit(1);
    }
  }
  const level = process.env.PQGATE_LOG_LEVEL;
  const logger = new Logger({ level: isLogLevel(level) ? level : (config?.logLevel ?? 'info'), format: 'text', sink: (l) => process.stdout.write(l + '\n') });

  let dataPlane: XfrmDataPlane | undefined;
  const want = process.env.PQGATE_DATAPLANE ?? (config?.dataPlane ? 'default' : 'auto');
  if (want === 'kernel' || want === 'auto') {
    const probe = probeKernelXfrm();
    if (probe.ok || want === 'kernel') {
      dataPlane = createKernelDataPlane({
        onError: (e) => logger.warn('kernel data plane', { error: e }),
        // The accelerated crypto drivers before the first SA (cpu-crypto.ts): rcS loads them only after the services' start.
        beforeFirstSa: async () => {
          if ((await loadCpuCryptoDrivers()) === 'loaded') logger.info('CPU crypto drivers loaded before the first SA');
        },
      });
      // Interface settings of route-based tunnels (the daemon applies them only to its userspace data plane).
      for (const t of config?.tunnels ?? []) {
        const o: { insideAddr?: string; mtu?: number } = {};
        if (t.mode === 'route' && t.insideAddr !== undefined) o.insideAddr = t.insideAddr;
        if (t.mtu !== undefined) o.mtu = t.mtu;
        await dataPlane.setTunnelOptions(t.name, o);
      }
      logger.info('kernel XFRM data plane selected', probe.reasons.length ? { notes: probe.reasons } : undefined);
    } else {
      logger.info('kernel cannot do ESP; using the default data plane', { reasons: probe.reasons });
    }
  }

  // Upgrades (firmware/upgrade/device-boot.ts): a trial slot snapshots the
  // configuration database before its migrations run; a slot that finds the
  // database newer than its schema (rolled back after an upgrade migrated it)
  // restores that snapshot. Never fatal: the daemon starts either way.
  if (db !== undefined) {
    try {
      const backend = imageSlotBackend();
      if (backend) prepareDatabase(backend, resolve(db), SCHEMA_VERSION, (m) => logger.info(m));
    } catch (e) {
      logger.error('upgrade database preparation failed', { error: e });
    }
  }

  const app = await startAppliance({
    logger,
    env: process.env,
    // Output goes to syslog through the service's pipe already.
    syslog: 'off',
    appliance: true,
    webSocket: WEB_SOCKET,
    webGroupName: 'pqgate-web',
    ...(db !== undefined ? { db: resolve(db) } : { config: config!, configPath: resolve(file!) }),
    ...(dataPlane ? { dataPlane, forceEncap: false } : {}),
    levelOverridden: isLogLevel(level),
  });
  hooks.onReady?.();

  let stopping = false;
  const stop = (sig: string): void => {
    if (stopping) process.exit(1);
    stopping = true;
    logger.info(`${sig} received`);
    app.stop(sig).then(
      () => process.exit(0),
      (e: unknown) => {
        logger.error('shutdown failed', { error: e });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGHUP', () => void app.reconcile('SIGHUP').catch((e: unknown) => logger.error('reload failed; keeping the running configuration', { error: e })));
}

/**
 * The control calls the web admin makes for its first pages (login or setup,
 * dashboard), made once by prepareDaemonCodeCache.
 */
export const WARM_UP_CALLS: readonly string[] = ['users.setupRequired', 'upgrade.status', 'config.pending', 'status.tunnels', 'status', 'version', 'system.info'];

/**
 * Image build only (`lib/run.cjs --write-cache daemon`, docs/image.md "Node
 * start-up"): one start and stop of the daemon in a throwaway directory, so
 * that the functions every boot runs (the store's open and first revision,
 * the configuration's compilation, the engine, the logger, the control
 * server and the web admin's first calls) are compiled when the bundle's V8
 * code cache is written. The cache holds what was compiled by then; a
 * function that only runs in main() would otherwise be compiled from source
 * at every boot (under QEMU TCG its socket came ~0.15 s earlier with this:
 * docs/image.md "Boot time", round 6).
 *
 * It touches nothing outside its temporary directory: a fake network instead
 * of UDP sockets, the recording data plane instead of the kernel's, no
 * syslog, no address watch, no firmware slots, no environment (no key log).
 * Returns the number of warm-up calls the daemon answered.
 */
export async function prepareDaemonCodeCache(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'pqgate-daemon-cache-'));
  try {
    const logger = new Logger({ level: 'info', format: 'text', sink: () => {} });
    const app = await startAppliance({
      logger,
      env: {},
      syslog: 'off',
      appliance: false,
      db: join(dir, 'data', 'pqgate.db'),
      controlSocket: join(dir, 'run', 'control.sock'),
      webSocket: join(dir, 'run-web', 'web.sock'),
      dataPlaneKind: 'recording',
      transportFactory: async () => new FakeTransport(new FakeNetwork(), { addresses: ['192.0.2.1'] }),
      sourceAddressFor: null,
      addressWatchMs: false,
    });
    let answered = 0;
    try {
      const client = await ControlClient.connect(app.webSocketPath ?? app.controlSocket, { timeoutMs: 60_000 });
      try {
        for (const method of WARM_UP_CALLS) {
          try {
            await client.call(method, {});
            answered++;
          } catch {
            // An error answer is code that ran too; only the count says so.
          }
        }
      } finally {
        client.close();
      }
    } finally {
      await app.stop('code cache');
    }
    return answered;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
