/**
 * The control API: every method the daemon serves on its control socket
 * (firmware/control/protocol.ts framing), with parameter and result types.
 * The CLI and the web admin (which runs unprivileged and reaches the daemon
 * only through this socket) are both clients of exactly this contract; the
 * daemon implements it. Secrets never appear in any result: PSKs and private
 * keys go in (config set/import, certificate upload) but never come out,
 * except in `config.export` with `includeSecrets` for an authorised backup.
 *
 * Errors: ControlError codes from protocol.ts plus the store's
 * (firmware/store/errors.ts), e.g. validation errors carry every field path.
 */
import type { IkeSaStatus } from '../ikev2/engine-types.js';
import type { UpgradeStatus, InstallResult } from '../upgrade/service.js';

/** Who asks (the web admin passes the logged-in user; the CLI the unix user). */
export interface Actor {
  actor: string;
}

export interface RevisionInfo {
  id: number;
  author: string;
  comment: string;
  createdAt: number; // ms since epoch
  /** Pending commit-confirmed revision: deadline (ms since epoch) or null. */
  confirmDeadline: number | null;
  state: 'committed' | 'pending' | 'rolled-back';
}

export interface ValidationIssue {
  path: string;
  message: string;
}

export interface CertificateInfo {
  name: string;
  kind: 'cert' | 'ca';
  subject: string;
  issuer: string;
  notBefore: string;
  notAfter: string;
  sans: string[];
  keyType: string;
  hasPrivateKey: boolean;
}

export interface EventEntry {
  id: number;
  ts: number;
  level: 'error' | 'warn' | 'info' | 'debug';
  tunnel?: string;
  message: string;
}

export interface SystemInfo {
  hostname: string;
  version: string;
  uptimeSec: number;
  daemonUptimeSec: number;
  dataPlane: string;
  cpu: { model: string; cores: number; load: number[] };
  memory: { totalBytes: number; freeBytes: number; rssBytes: number };
  interfaces: { name: string; addresses: string[]; mac?: string; up: boolean }[];
  temperaturesC: { label: string; value: number }[];
  /** Firmware slots when running from an image (issue: firmware image), else null. */
  firmware: { active: string; slots: { name: string; version: string; state: string }[]; lastUpgrade: string | null } | null;
}

/** Per Child SA traffic counters (the data plane's), keyed like IkeSaStatus children. */
export interface TunnelStatus {
  sas: IkeSaStatus[];
  /** Configured tunnels with no IKE SA, with the last error in plain words. */
  idle: { tunnel: string; lastError: string | null; nextAttemptAt: number | null }[];
  /**
   * The daemon's clock (ms) when the snapshot was taken. establishedAt,
   * rekeyAt, installedAt, lastInAt/lastOutAt and nextAttemptAt are on this
   * (monotonic) clock, so clients show them relative to it.
   */
  now?: number;
}

/** Method name -> [params, result]. */
export interface ControlApi {
  version: [
    Record<string, never>,
    {
      version: string;
      protocol: 1;
      /** The daemon's (monotonic) clock when answering, uptime on it, and what `pqgate version` shows. */
      now?: number;
      uptimeMs?: number;
      node?: string;
      pid?: number;
      dataPlane?: string;
      /** Configured (enabled) tunnel names. */
      tunnels?: string[];
      /** 'store' (configuration database, --db) or 'file' (stateless --config / --default-config). */
      configSource?: 'store' | 'file';
    },
  ];
  status: [Record<string, never>, IkeSaStatus[]];
  'status.tunnels': [Record<string, never>, TunnelStatus];
  up: [{ tunnel: string } & Partial<Actor>, { ok: true }];
  /** `sa` narrows to one IKE SA (IkeSaStatus.id); `child` to one Child SA (ChildSaStatus.reqid). */
  down: [{ tunnel: string; sa?: number } & Partial<Actor>, { ok: true }];
  'rekey-ike': [{ tunnel: string; sa?: number } & Partial<Actor>, { ok: true }];
  'rekey-child': [{ tunnel: string; sa?: number; child?: number } & Partial<Actor>, { ok: true }];
  /** Delete and re-establish (IKE SA with all its Child SAs). */
  reset: [{ tunnel: string } & Partial<Actor>, { ok: true }];
  dpd: [{ tunnel: string }, { ok: true }];
  /** Re-apply the configuration (store: the current revision; file mode: re-read the file). */
  reload: [Record<string, never>, { tunnels: number; names?: string[]; restartRequired?: string[] }];
  metrics: [Record<string, never>, { text: string }];

  /** The running configuration document (docs/config.md), secrets replaced by "<set>". */
  'config.get': [Record<string, never>, { revision: number; document: unknown }];
  /** Validate without applying: every issue with its field path. */
  'config.validate': [{ document: unknown }, { ok: boolean; issues: ValidationIssue[] }];
  /** Apply a whole document (secrets may be "<set>" = keep the current one); optional commit-confirmed timeout. */
  'config.set': [{ document: unknown; comment?: string; confirmTimeoutSec?: number } & Actor, { revision: RevisionInfo }];
  /** Add/replace/remove one tunnel; `preset` pre-fills the fields (presets are data: firmware/presets). */
  'config.tunnel.put': [
    {
      tunnel: Record<string, unknown>;
      preset?: string;
      /** Values for the preset's {templates} (Cloudflare: tunnel_id, account_id); presets.ts ApplyPresetOptions.params. */
      params?: Record<string, string>;
      comment?: string;
      confirmTimeoutSec?: number;
    } & Actor,
    { revision: RevisionInfo },
  ];
  'config.tunnel.delete': [{ name: string; comment?: string; confirmTimeoutSec?: number } & Actor, { revision: RevisionInfo }];
  'config.presets': [
    Record<string, never>,
    {
      name: string;
      description: string;
      tunnel: Record<string, unknown>;
      /** presets.ts Preset: short title, the {template} parameters and the fields the user must supply. */
      title?: string;
      params?: Record<string, { description: string; pattern: string }>;
      requires?: string[];
    }[],
  ];
  'config.import': [{ document: unknown; comment?: string } & Actor, { revision: RevisionInfo }];
  /** Backup document (+ schema_version); includeSecrets only for an authorised backup download. */
  'config.export': [{ includeSecrets?: boolean } & Partial<Actor>, { document: unknown }];
  'config.history': [{ limit?: number; beforeId?: number }, RevisionInfo[]];
  'config.diff': [{ from: number; to: number }, { text: string; entries: { path: string; kind: string; before?: unknown; after?: unknown }[] }];
  'config.rollback': [{ revision: number; comment?: string; confirmTimeoutSec?: number } & Actor, { revision: RevisionInfo }];
  'config.confirm': [Actor, { revision: RevisionInfo }];
  /** Roll back a pending commit-confirmed revision now. */
  'config.cancel': [Actor, { revision: RevisionInfo }];
  'config.pending': [Record<string, never>, { revision: RevisionInfo | null }];

  'certs.list': [Record<string, never>, CertificateInfo[]];
  'certs.add': [{ name: string; kind: 'cert' | 'ca'; pem: string; privateKeyPem?: string } & Actor, CertificateInfo];
  'certs.remove': [{ name: string } & Actor, { ok: true }];

  'users.list': [Record<string, never>, { name: string; createdAt: number; lastLoginAt: number | null }[]];
  /** First-boot setup creates the first user; later only an authenticated actor may add users. */
  'users.create': [{ name: string; password: string } & Partial<Actor>, { ok: true }];
  'users.verify': [{ name: string; password: string }, { ok: boolean }];
  'users.password': [{ name: string; currentPassword?: string; newPassword: string } & Actor, { ok: true }];
  'users.delete': [{ name: string } & Actor, { ok: true }];
  /** True until the first admin user exists (first-boot setup page). */
  'users.setupRequired': [Record<string, never>, { setupRequired: boolean }];

  /** Newest first. `level` = minimum severity ('warn': warnings and errors); `afterId`: only newer events (follow). */
  'logs.events': [{ limit?: number; beforeId?: number; afterId?: number; tunnel?: string; level?: string }, EventEntry[]];
  'logs.audit': [{ limit?: number; beforeId?: number }, { id: number; ts: number; actor: string; action: string; detail: string }[]];
  /** Current IKE and ESP keys in Wireshark's UAT formats, for a support case (root only: CLI). */
  'keys.export': [Actor, { ikev2_decryption_table: string; esp_sa: string }];
  /**
   * Key capture for keys.export (root only: CLI). Off by default: the daemon
   * keeps no keys. On: the latest keys of each live SA are kept in memory;
   * `rekey` rekeys every IKE and Child SA so the current ones are covered.
   * Off wipes them.
   */
  'keys.capture': [{ enabled: boolean; rekey?: boolean } & Actor, { enabled: boolean; since: number | null; ike: number; esp: number }];

  'system.info': [Record<string, never>, SystemInfo];
  'system.reboot': [Actor, { ok: true }];
  /** Wipe configuration, keys, certificates and logs; back to first-boot state (typed confirmation in the UI). */
  'system.factoryReset': [{ confirm: 'FACTORY RESET' } & Actor, { ok: true; rebooting?: boolean }];

  /** Firmware slots, running version, development flag, last outcome, install progress (docs/upgrade.md). */
  'upgrade.status': [Record<string, never>, UpgradeStatus];
  /**
   * Verify a bundle file (a path the daemon can read; web socket: a spooled *.pqb) and install it in the
   * inactive slot as the trial slot. `wait` (default true): answer when done (or with the refusal's code);
   * false: answer at once with the install id, progress in upgrade.status.
   */
  'upgrade.install': [{ path: string; reboot?: boolean; wait?: boolean } & Actor, { id: number; started: true } | ({ id: number } & InstallResult)];
  /** Install a newer root-signed key list (signing key rotation/revocation without a firmware upgrade). */
  'upgrade.keylist': [{ path: string } & Actor, { version: number; changed: boolean }];
}

export type ControlMethod = keyof ControlApi;
export type ControlParams<M extends ControlMethod> = ControlApi[M][0];
export type ControlResult<M extends ControlMethod> = ControlApi[M][1];

/** Placeholder the daemon returns instead of a secret, and accepts back as "keep the current value". */
export const SECRET_PLACEHOLDER = '<set>';
