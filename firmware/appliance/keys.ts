/**
 * `keys.export` (`pqgate keys export`): the current IKE and ESP keys in
 * Wireshark's UAT formats (ikev2_decryption_table, esp_sa; sa/wireshark.ts
 * formats them), for decrypting a capture in a support case.
 *
 * The engine hands out keys once, as key log actions at the moment they are
 * derived, and keeps nothing that could be asked for later. Holding every
 * key by default would defeat the point of a key log being opt-in, so
 * capture is off by default and is switched on either at start
 * (`pqgate daemon --key-capture`) or at run time (`keys.capture`). While it
 * is on, only the latest record per live SA is kept, in memory only:
 *
 *   ikev2_decryption_table  keyed by "SPIi,SPIr"; dropped when the engine
 *                           reports the IKE SA closed or failed, and records
 *                           of SAs missing from its status are pruned at
 *                           every export;
 *   esp_sa                  keyed by SPI; dropped when the engine deletes the
 *                           Child SA (delete-child action).
 *
 * SAs negotiated before capture was switched on are not covered: switching
 * it on with `rekey: true` rekeys every IKE SA and Child SA so that their
 * fresh keys are captured. Switching it off wipes everything.
 */
import type { IkeSaStatus, KeylogAction, DeleteChildAction, EventAction } from '../ikev2/engine-types.js';

/** Bound on kept records (a hub has many SAs; stale IKE records are pruned well before this). */
const MAX_RECORDS = 65536;

export class KeyCapture {
  private on: boolean;
  private readonly ike = new Map<string, string>();
  private readonly esp = new Map<number, string>();
  private since: number | null;

  constructor(enabled = false, private readonly now: () => number = Date.now) {
    this.on = enabled;
    this.since = enabled ? now() : null;
  }

  get enabled(): boolean {
    return this.on;
  }

  /** When capture was (last) switched on, ms since the epoch; null while off. */
  get enabledSince(): number | null {
    return this.since;
  }

  setEnabled(on: boolean): void {
    if (on && !this.on) this.since = this.now();
    if (!on) {
      this.ike.clear();
      this.esp.clear();
      this.since = null;
    }
    this.on = on;
  }

  /** A key log action from the engine. Its `line` (a getter formatting hex) is only read while capturing. */
  onKeylog(a: KeylogAction): void {
    if (!this.on) return;
    const line = a.line.replace(/[\r\n]+/g, '');
    if (a.table === 'ikev2_decryption_table') {
      const m = /^(?:# [^:]*: )?([0-9a-f]{16}),([0-9a-f]{16}),/.exec(line);
      if (!m) return;
      this.ike.set(`${m[1]},${m[2]}`, line);
    } else {
      // Quoted "0x<8 hex>" (decryptable record) or ,0x<8 hex>, (the "# not decryptable" comment form).
      const m = /"0x([0-9a-f]{8})"/.exec(line) ?? /,0x([0-9a-f]{8}),/.exec(line);
      if (!m) return;
      this.esp.set(parseInt(m[1]!, 16) >>> 0, line);
    }
    if (this.ike.size + this.esp.size > MAX_RECORDS) {
      // Unreachable with pruning in place short of a misbehaving peer; never grow without bound.
      const oldest = this.ike.keys().next().value;
      if (oldest !== undefined) this.ike.delete(oldest);
      else this.esp.delete(this.esp.keys().next().value!);
    }
  }

  /** The engine's "IKE SA closed/failed" event names the SA (spiI_spiR): its keys go. */
  onEvent(a: EventAction): void {
    if (!this.on || !a.ikeSa || !/^IKE SA (closed|failed): /.test(a.message)) return;
    this.ike.delete(a.ikeSa.replace('_', ','));
  }

  onDeleteChild(a: DeleteChildAction): void {
    this.esp.delete(a.inboundSpi >>> 0);
    this.esp.delete(a.outboundSpi >>> 0);
  }

  /** Drop IKE records of SAs the engine no longer has. */
  prune(status: readonly IkeSaStatus[]): void {
    const live = new Set(status.map((s) => `${s.spiI},${s.spiR}`));
    for (const k of [...this.ike.keys()]) if (!live.has(k)) this.ike.delete(k);
  }

  /** The records, one per line, newline-terminated (empty strings when there are none). */
  export(status: readonly IkeSaStatus[]): { ikev2_decryption_table: string; esp_sa: string } {
    this.prune(status);
    const lines = (m: Map<unknown, string>) => [...m.values()].map((l) => l + '\n').join('');
    return { ikev2_decryption_table: lines(this.ike), esp_sa: lines(this.esp) };
  }

  counts(): { ike: number; esp: number } {
    return { ike: this.ike.size, esp: this.esp.size };
  }
}
