/**
 * `pqgate daemon`'s start-up around Appliance.start: syslog, the web admin
 * socket's group, the log level, and a start-up summary that says where to
 * go next.
 *
 * Web socket permissions (docs/cli.md "Permissions"): the admin socket is
 * owner only (root). The web admin runs as an unprivileged user and talks to
 * the daemon through a second socket, `<control dir>-web/web.sock`, which is
 * opened to one group: `--web-group NAME`, else `pqgate-web` if that group
 * exists, else nobody but the owner. That socket serves every method except
 * the session-key ones (keys.*).
 */
import { Appliance, type ApplianceOptions } from './appliance.js';
import { groupId } from './system.js';
import { SyslogSink, syslogUnavailable, type SyslogMode } from './syslog.js';
import { PqError } from '../util/errors.js';
import type { Logger } from '../log.js';

export const DEFAULT_WEB_GROUP = 'pqgate-web';

export interface LaunchOptions extends ApplianceOptions {
  logger: Logger;
  syslog?: SyslogMode;
  /** Group name for the web socket (resolved from /etc/group). */
  webGroupName?: string;
  /** --log-level given: the configuration's log_level does not replace it at start. */
  levelOverridden?: boolean;
}

export async function startAppliance(o: LaunchOptions): Promise<Appliance> {
  const { logger, syslog = 'auto', webGroupName, levelOverridden, ...opts } = o;
  let sink: SyslogSink | undefined;
  if (syslog !== 'off') {
    const why = syslogUnavailable();
    if (why === undefined) {
      sink = new SyslogSink({ onProblem: (m) => logger.warn(m) });
      logger.setTap((r) => sink!.write(r));
    } else if (syslog === 'on') throw new PqError('ERR_SYSLOG', `--syslog on: ${why}`);
    else logger.debug('syslog off', { reason: why });
  }
  let webGroup = opts.webGroup;
  if (webGroup === undefined) {
    if (webGroupName !== undefined) {
      webGroup = /^\d+$/.test(webGroupName) ? Number(webGroupName) : groupId(webGroupName);
      if (webGroup === undefined) throw new PqError('ERR_ARGUMENT', `--web-group: no group '${webGroupName}' in /etc/group`);
    } else webGroup = groupId(DEFAULT_WEB_GROUP);
  }
  let app: Appliance;
  try {
    app = await Appliance.start({ ...opts, logger, ...(webGroup !== undefined ? { webGroup } : {}) });
  } catch (e) {
    logger.setTap(undefined);
    await sink?.close();
    throw e;
  }
  if (!levelOverridden) logger.setLevel(app.daemon.config.logLevel);
  const stop = app.stop.bind(app);
  app.stop = async (reason?: string) => {
    await stop(reason);
    logger.setTap(undefined);
    await sink?.close();
  };
  const store = app.store;
  const setup = store ? store.listUsers().length === 0 : false;
  logger.info('ready', {
    configuration: store ? store.path : (o.configPath ?? 'embedded default'),
    ...(store ? { revision: store.current().id } : {}),
    controlSocket: app.controlSocket,
    ...(app.webSocketPath ? { webSocket: app.webSocketPath } : {}),
    syslog: sink ? 'on' : 'off',
    ...(setup ? { next: 'first boot: create the first administrator in the web admin or with `pqgate users add NAME`' } : {}),
  });
  return app;
}
