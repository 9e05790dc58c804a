/**
 * Shared interface of the upgrade subsystem (issue 8). The bundle side
 * (format, signatures, trust, service) and the device side (slot writer,
 * systemd-boot boot counting, health gate) meet here; fields may be added,
 * never removed or renamed.
 */
import { PqError } from '../util/errors.js';

export type SlotName = 'a' | 'b';

/** One image inside a bundle. `offset` is the absolute byte offset in the bundle file. */
export interface BundleImage {
  name: 'rootfs' | 'kernel' | 'initrd';
  offset: number;
  size: number;
  sha256: Uint8Array;
}

export interface BundleHeader {
  format: 1;
  board: string;
  version: string;
  /** Monotonic anti-rollback counter; a bundle below the device's floor is refused (DOWNGRADE). */
  securityVersion: number;
  /** ISO 8601 UTC build time. */
  created: string;
  images: BundleImage[];
  /** 'dev' = built without signing keys (its rootfs trust store accepts unsigned bundles); only a dev image installs it. */
  build?: 'release' | 'dev';
}

export interface SlotStatus {
  name: SlotName;
  active: boolean;
  state: 'good' | 'trial' | 'bad' | 'empty';
  triesLeft?: number;
  triesDone?: number;
  version?: string;
  securityVersion?: number;
  board?: string;
}

export interface UpgradeOutcome {
  at: string;
  fromVersion: string;
  toVersion: string;
  slot: SlotName;
  result: 'installed' | 'committed' | 'rolled-back' | 'refused' | 'failed';
  reason?: string;
  /** UpgradeErrorCode (or the device side's code) for refused/failed outcomes. */
  code?: string;
}

/** Implemented by the device side for the image (firmware/upgrade/device.ts); tests use a file-backed fake. */
export interface SlotBackend {
  readonly board: string;
  slots(): Promise<SlotStatus[]>;
  runningVersion(): Promise<string>;
  /** Highest security version committed on this device (kept on the data partition); downgrade floor. */
  securityFloor(): Promise<number>;
  /** Write the images to the inactive slot (rootfs to its partition, kernel+initrd to the ESP under the slot's name), read back and compare SHA-256; throws UpgradeError('WRITE_VERIFY'). Returns the slot written. */
  writeInactive(bundlePath: string, images: readonly BundleImage[], onProgress?: (done: number, total: number) => void): Promise<SlotName>;
  /** Make `slot` the trial slot (BLS entry with boot counter) and record its metadata. */
  markTrial(slot: SlotName, header: BundleHeader): Promise<void>;
  recordOutcome(o: UpgradeOutcome): Promise<void>;
  lastOutcome(): Promise<UpgradeOutcome | undefined>;
  /** Wipe the data partition on next boot. */
  scheduleFactoryReset(): Promise<void>;
  reboot(): Promise<void>;
}

export const UpgradeErrorCodes = [
  'BAD_FORMAT', 'TRUNCATED', 'UNSIGNED', 'BAD_SIGNATURE', 'UNKNOWN_KEY', 'REVOKED_KEY',
  'WRONG_BOARD', 'DOWNGRADE', 'IMAGE_HASH', 'TOO_LARGE', 'WRITE_VERIFY', 'BUSY', 'DEV_MODE_REQUIRED',
  /** Trust store or key list unusable (missing anchors, bad list signature, replayed list). */
  'BAD_TRUST',
  /** No SlotBackend on this machine (not running from the appliance image). */
  'NO_BACKEND',
  /** File not found / not a regular file / symlink in the spool. */
  'BAD_FILE',
  /** A key list older than the one the device has (anti-replay). */
  'KEYLIST_REPLAY',
  /** The signing key is outside its validity window at the bundle's creation time. */
  'KEY_EXPIRED',
] as const;
export type UpgradeErrorCode = (typeof UpgradeErrorCodes)[number];

/** Typed upgrade failure; `code` is stable and shown to operators, the message is plain words. */
export class UpgradeError extends PqError {
  declare readonly code: UpgradeErrorCode;
  /** The bundle's header when it was refused after parsing (so the outcome can name the version). */
  header?: BundleHeader;
  constructor(code: UpgradeErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** Trust store as loaded from the read-only rootfs (firmware/upgrade/trust.ts). */
export interface TrustStore {
  /** Development image: accepts unsigned bundles (and signed ones it can verify). */
  readonly dev: boolean;
  /** Root key pairs (id -> public keys). */
  readonly roots: ReadonlyMap<string, HybridPublicKey>;
}

/** One key id = one Ed25519 + ML-DSA-65 pair; both signatures must verify. */
export interface HybridPublicKey {
  id: string;
  ed25519: Uint8Array;   // 32 bytes
  mldsa65: Uint8Array;   // 1952 bytes
}

export interface VerifiedBundle {
  header: BundleHeader;
  /** Exact header bytes covered by the signatures. */
  headerBytes: Uint8Array;
  /** Key id that signed it, or undefined for an unsigned (dev) bundle. */
  signedBy: string | undefined;
  fileSize: number;
}

export interface VerifyOptions {
  trust: TrustStore;
  /** Board of the device; mismatch -> WRONG_BOARD. */
  board: string;
  /** Downgrade floor (SlotBackend.securityFloor()); securityVersion below -> DOWNGRADE. */
  securityFloor: number;
  /** Directory with the current signed key list (data partition), see keylist.ts. */
  keyListPath?: string;
}

/**
 * Verify a bundle file completely (format, signatures, board, downgrade, image
 * hashes) before anything is written. Throws UpgradeError. Implemented in bundle-verify.ts.
 */
export type VerifyBundleFile = (path: string, opts: VerifyOptions) => Promise<VerifiedBundle>;

/**
 * What firmware/upgrade/device.ts (device side) exports for the daemon:
 * `export const createDeviceBackend: CreateDeviceBackend`. Called only when
 * running from the appliance image (kernel command line `fw.slot=`).
 */
export type CreateDeviceBackend = (o: { slot: SlotName }) => Promise<SlotBackend>;
