/**
 * Defaults for omitted configuration fields (documented in docs/config.md)
 * and the embedded default document used by `pqgate daemon --default-config`
 * (validated by schema.ts defaultConfig()). Pure data: no imports from
 * schema.ts, so there is no import cycle.
 */
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import defaultDocument from './default-config.json' with { type: 'json' };

/**
 * IKE proposals when `proposals` is omitted. First a hybrid proposal (X25519
 * or ECP-384, then ML-KEM-768 or -1024 in ADDKE1, RFC 9370 + the ML-KEM
 * draft), then a classical fallback with the same algorithms: strongSwan 5.x
 * and libreswan reject a lone hybrid proposal made optional with ke1_none
 * (see /work/shared/spec/peers-and-machine.md), so legacy peers need a
 * separate proposal. Drop the second entry to require post-quantum.
 */
export const DEFAULT_IKE_PROPOSALS: readonly string[] = [
  'aes256gcm16-prfsha384-x25519-ecp384-ke1_mlkem768-ke1_mlkem1024',
  'aes256gcm16-prfsha384-x25519-ecp384',
];

/** ESP proposals when `esp_proposals` is omitted (no PFS; ESN off, as Cloudflare requires). */
export const DEFAULT_ESP_PROPOSALS: readonly string[] = ['aes256gcm16', 'aes128gcm16'];

export const DAEMON_DEFAULTS = {
  listen: ['0.0.0.0'] as readonly string[],
  ikePort: 500,
  nattPort: 4500,
  logLevel: 'info' as const,
};

export const TUNNEL_DEFAULTS = {
  enabled: true,
  remotePort: 500,
  auth: 'psk' as const,
  localTs: ['0.0.0.0/0'] as readonly string[],
  remoteTs: ['0.0.0.0/0'] as readonly string[],
  mode: 'route' as const,
  fragmentation: 'yes' as const,
  /** strongSwan's charon.fragment_size default (RFC 7383 §2.5.1 suggests 1280 for IPv6, 576 minimum for IPv4). */
  fragmentSize: 1280,
  encap: false,
  /** 24 h, as Cisco's and FortiOS's defaults (vendor-semantics.md). */
  rekeyTime: 86400,
  /** 8 h. */
  childRekeyTime: 28800,
  /** Liveness check every 30 s of inactivity. */
  dpdDelay: 30,
  /** RFC 4303 §3.4.3 suggests 64; set 0 for Cloudflare (anycast reorders). */
  replayWindow: 64,
  /** No MSS clamp by default (1360 for Cloudflare). */
  mss: 0,
};

/**
 * Where the control socket lives when the config does not say: root uses
 * /run/pqgate; anyone else $XDG_RUNTIME_DIR/pqgate or /tmp/pqgate-<uid>, so
 * a fresh, unprivileged start does not fail on /run permissions.
 */
export function defaultControlSocket(env: NodeJS.ProcessEnv = process.env): string {
  if (env.PQGATE_SOCKET) return env.PQGATE_SOCKET;
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  if (uid === 0) return '/run/pqgate/control.sock';
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, 'pqgate', 'control.sock');
  return join(tmpdir(), `pqgate-${uid}`, 'control.sock');
}

/** The raw embedded default document (snake_case JSON). */
export function defaultConfigDocument(): unknown {
  return structuredClone(defaultDocument);
}
