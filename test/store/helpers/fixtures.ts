/** Shared fixtures for the store tests: temporary stores with a fake wall clock, and sample documents. */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { ConfigStore, type StoreOptions } from '../../../firmware/store/store.js';

export const PSK_A = 'Branch-PSK-alpha-7f3c9e21d4b8';
export const PSK_B = 'Branch-PSK-bravo-0a6e5d4c3b2f';
export const PSK_C = '0x3f1a9c0e7b5d42a8c6e1f0b9d2a7c4e5';

export class TestClock {
  t = Date.UTC(2026, 10, 27, 10, 0, 0);
  now = (): number => this.t;
  advance(sec: number): void {
    this.t += sec * 1000;
  }
}

export interface TempStore {
  dir: string;
  path: string;
  clock: TestClock;
  store: ConfigStore;
  reopen(opts?: StoreOptions): ConfigStore;
  cleanup(): void;
}

export function tempStore(opts: StoreOptions = {}): TempStore {
  const dir = mkdtempSync(join(tmpdir(), 'pqgate-store-'));
  const path = join(dir, 'state', 'config.db');
  const clock = new TestClock();
  const t: TempStore = {
    dir,
    path,
    clock,
    store: ConfigStore.open(path, { now: clock.now, ...opts }),
    reopen(o: StoreOptions = {}) {
      t.store.close();
      t.store = ConfigStore.open(path, { now: clock.now, ...o });
      return t.store;
    },
    cleanup() {
      t.store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return t;
}

/** A two-tunnel document in the form of docs/config.md. */
export function sampleDoc(): any {
  return {
    version: 1,
    listen: ['0.0.0.0'],
    ike_port: 500,
    natt_port: 4500,
    log_level: 'info',
    tunnels: [
      {
        name: 'cf1',
        local_addr: '192.0.2.1',
        remote_addr: '192.0.2.2',
        local_id: 'fqdn:branch.example',
        psk: PSK_A,
        proposals: ['aes256gcm16-prfsha384-ecp384-ke1_mlkem768-ke1_mlkem1024'],
        esp_proposals: ['aes256gcm16'],
        mode: 'route',
        inside_addr: '10.100.0.9/31',
        dpd_delay: 10,
        replay_window: 0,
        mss: 1360,
      },
      {
        name: 'site2',
        remote_addr: '%any',
        local_id: '@gw.branch.example',
        remote_id: '@site2.example',
        psk: PSK_B,
        local_ts: ['10.1.0.0/16'],
        remote_ts: ['10.2.0.0/16'],
        mode: 'policy',
      },
    ],
  };
}
