/**
 * firmware/net/address-watch.ts: a change of the local address set is
 * reported once, with the new and the previous set; no change, no call;
 * a failing read is reported and polling goes on; stop() ends it.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { watchLocalAddresses } from '../../firmware/net/address-watch.js';

describe('watchLocalAddresses', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('reports each change of the set once (order and duplicates do not count)', () => {
    let addrs = ['127.0.0.1', '::1'];
    const changes: [string[], string[]][] = [];
    const w = watchLocalAddresses({ intervalMs: 1000, read: () => addrs, onChange: (now, before) => changes.push([now, before]) });
    vi.advanceTimersByTime(3000);
    expect(changes).toEqual([]);
    addrs = ['::1', '127.0.0.1', '127.0.0.1'];
    vi.advanceTimersByTime(1000);
    expect(changes).toEqual([]);
    // A DHCP lease arrives.
    addrs = ['127.0.0.1', '10.0.2.15', '::1'];
    vi.advanceTimersByTime(1000);
    expect(changes).toEqual([[['10.0.2.15', '127.0.0.1', '::1'], ['127.0.0.1', '::1']]]);
    vi.advanceTimersByTime(5000);
    expect(changes).toHaveLength(1);
    // The lease is lost.
    addrs = ['127.0.0.1', '::1'];
    vi.advanceTimersByTime(1000);
    expect(changes[1]).toEqual([['127.0.0.1', '::1'], ['10.0.2.15', '127.0.0.1', '::1']]);
    w.stop();
    addrs = ['192.0.2.1'];
    vi.advanceTimersByTime(5000);
    w.check();
    expect(changes).toHaveLength(2);
  });

  it('check() polls at once', () => {
    let addrs = ['127.0.0.1'];
    const seen: string[][] = [];
    const w = watchLocalAddresses({ intervalMs: 60_000, read: () => addrs, onChange: (now) => seen.push(now) });
    addrs = ['127.0.0.1', '192.0.2.1'];
    w.check();
    expect(seen).toEqual([['127.0.0.1', '192.0.2.1']]);
    w.stop();
  });

  it('a read that throws is reported and polling goes on', () => {
    let fail = false;
    let addrs = ['127.0.0.1'];
    const errors: unknown[] = [];
    const seen: string[][] = [];
    const w = watchLocalAddresses({
      intervalMs: 1000,
      read: () => {
        if (fail) throw new Error('getifaddrs failed');
        return addrs;
      },
      onChange: (now) => seen.push(now),
      onError: (e) => errors.push(e),
    });
    fail = true;
    vi.advanceTimersByTime(2000);
    expect(errors).toHaveLength(2);
    expect(seen).toEqual([]);
    fail = false;
    addrs = ['127.0.0.1', '198.51.100.1'];
    vi.advanceTimersByTime(1000);
    expect(seen).toEqual([['127.0.0.1', '198.51.100.1']]);
    w.stop();
  });

  it('reads the system interfaces by default and does not keep the process alive', () => {
    const w = watchLocalAddresses({ onChange: () => undefined });
    // No change between two reads of the real interface list.
    w.check();
    w.stop();
  });
});
