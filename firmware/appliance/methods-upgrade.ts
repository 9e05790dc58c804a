/**
 * Control methods for firmware upgrades (api.ts `upgrade.*`), served by
 * firmware/upgrade/service.ts. The control socket carries a *path*, never
 * the bundle: the CLI names a file, the web admin streams the upload to its
 * spool directory first (webui/pages/upgrade.ts).
 *
 * On the web socket (group pqgate-web, unprivileged) the path must be a
 * plain `*.pqb` name in a directory that is not reached through a symbolic
 * link (webSpoolPath below); the bundle itself is opened with O_NOFOLLOW
 * (bundle-verify.ts), so a link planted in the spool is refused, not followed.
 */
import { realpathSync } from 'node:fs';
import { basename, dirname, isAbsolute, normalize } from 'node:path';
import type { ControlApi } from '../control/api.js';
import { ControlError, ControlErrorCode } from '../control/protocol.js';
import { UpgradeError } from '../upgrade/types.js';
import { NO_BACKEND_MESSAGE } from '../upgrade/service.js';
import type { Appliance } from './appliance.js';
import type { Handlers } from './methods-ops.js';
import { actor, obj, optBool, str } from './params.js';

type UpgradeMethod = 'upgrade.status' | 'upgrade.install' | 'upgrade.keylist';

function absPath(p: Record<string, unknown>): string {
  const path = str(p, 'path', { max: 1024 });
  if (!isAbsolute(path) || normalize(path) !== path || path.includes('\0')) throw new ControlError(ControlErrorCode.INVALID_PARAMS, 'params.path must be an absolute, normalised path');
  return path;
}

/** Web socket: `<dir>/<name>.pqb` with a safe name in a directory whose real path is itself (no symlinked directories). */
export function webSpoolPath(path: string): string {
  const name = basename(path);
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\.pqb$/.test(name)) throw new ControlError(ControlErrorCode.INVALID_PARAMS, 'params.path: the web admin may only install spooled *.pqb files');
  let real: string;
  try {
    real = realpathSync(dirname(path));
  } catch {
    throw new UpgradeError('BAD_FILE', `${path}: no such file`);
  }
  if (real !== dirname(path)) throw new UpgradeError('BAD_FILE', `${dirname(path)} is reached through a symbolic link: refused`);
  return path;
}

export function upgradeMethods(app: Appliance, opts: { web?: boolean } = {}): Handlers<UpgradeMethod> {
  const svc = () => app.upgrade;
  return {
    'upgrade.status': () => svc().status() as Promise<ControlApi['upgrade.status'][1]>,
    'upgrade.install': async (params) => {
      const p = obj(params);
      const who = actor(p);
      let path = absPath(p);
      if (opts.web) path = webSpoolPath(path);
      const reboot = optBool(p, 'reboot') ?? false;
      const wait = optBool(p, 'wait') ?? true;
      const s = svc();
      if (!s.backend) throw new UpgradeError('NO_BACKEND', NO_BACKEND_MESSAGE);
      if (s.isBusy) throw new UpgradeError('BUSY', 'another firmware upgrade is in progress');
      const id = s.nextId;
      app.events.append({ level: 'info', message: `firmware upgrade from ${basename(path)} started by ${who}` });
      const run = s.install(path, { reboot }).then(
        (r) => {
          app.events.append({ level: 'warn', message: `firmware ${r.version} installed in slot ${r.slot} (trial) by ${who}${r.rebooting ? '; rebooting' : '; it boots on the next reboot'}` });
          app.events.flush();
          return r;
        },
        (e: unknown) => {
          app.events.append({ level: 'error', message: `firmware upgrade refused or failed: ${(e as Error).message}` });
          throw e;
        },
      );
      if (!wait) {
        run.catch(() => undefined);
        return { id, started: true as const };
      }
      return { id, ...(await run) };
    },
    'upgrade.keylist': (params) => {
      const p = obj(params);
      const who = actor(p);
      const r = svc().installKeyList(absPath(p));
      if (r.changed) app.events.append({ level: 'warn', message: `signing key list version ${r.version} installed by ${who}` });
      return r;
    },
  };
}
