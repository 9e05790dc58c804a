/**
 * Wireshark key log: the engine emits KeylogAction lines (engine-types.ts)
 * already formatted as records of Wireshark's UAT tables; this module only
 * appends them to files.
 *
 *   PATH           ikev2_decryption_table records (UAT "IKEv2 Decryption Table",
 *                  columns: SPIi, SPIr, SK_ei, SK_er, encryption alg,
 *                  SK_ai, SK_ar, integrity alg; Wireshark test/config/
 *                  ikev2_decryption_table.tmpl)
 *   PATH.esp_sa    esp_sa records (UAT "ESP SAs": protocol, src, dst, SPI,
 *                  encryption alg, key, authentication alg, key; Wireshark
 *                  test/config/esp_sa.tmpl)
 *
 * Both files are UAT files as Wireshark stores them in a profile directory,
 * so they can be copied there verbatim or fed line by line to
 * `tshark -o "uat:ikev2_decryption_table:<line>"` (docs/cli.md).
 *
 * The files hold session keys: they are created with mode 0600 and an
 * existing file is forced to 0600 before anything is appended. Writes are
 * synchronous appends so that a crash never loses the keys of traffic that
 * was already sent.
 */
import { openSync, writeSync, closeSync, fchmodSync, fstatSync } from 'node:fs';
import type { KeylogAction } from './ikev2/engine-types.js';

export const ESP_SA_SUFFIX = '.esp_sa';

/** The key log path: PQGATE_KEYLOG (environment) wins over the config file's `keylog`. */
export function resolveKeylogPath(env: NodeJS.ProcessEnv, configured: string | undefined): string | undefined {
  const fromEnv = env.PQGATE_KEYLOG;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  return configured;
}

export class KeylogWriter {
  readonly ikePath: string;
  readonly espPath: string;
  private fds = new Map<string, number>();
  private closed = false;

  constructor(path: string) {
    this.ikePath = path;
    this.espPath = path + ESP_SA_SUFFIX;
  }

  private fd(path: string): number {
    let fd = this.fds.get(path);
    if (fd === undefined) {
      fd = openSync(path, 'a', 0o600);
      // `mode` only applies when the file is created; an existing file may
      // have been made by someone else with a looser mode.
      if ((fstatSync(fd).mode & 0o777) !== 0o600) fchmodSync(fd, 0o600);
      this.fds.set(path, fd);
    }
    return fd;
  }

  /** Append one record. Throws on I/O errors (the daemon logs and carries on). */
  write(action: KeylogAction): void {
    if (this.closed) return;
    const path = action.table === 'esp_sa' ? this.espPath : this.ikePath;
    // One record per line: a stray newline would split a record in two and
    // make Wireshark reject the whole file.
    const line = action.line.replace(/[\r\n]+/g, '') + '\n';
    writeSync(this.fd(path), line);
  }

  close(): void {
    this.closed = true;
    for (const fd of this.fds.values()) {
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
    }
    this.fds.clear();
  }
}
