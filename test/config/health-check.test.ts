/** health_check, dpd_mode and dpd_action 'hold' in the configuration document (docs/config.md). */
import { describe, expect, it } from 'vitest';
import { parseDaemonConfig, ConfigValidationError } from '../../firmware/config/schema.js';
import type { ConfigError } from '../../firmware/util/errors.js';

function doc(over: Record<string, unknown>): unknown {
  return {
    tunnels: [
      {
        name: 't1',
        local_addr: '192.0.2.1',
        remote_addr: '192.0.2.2',
        local_id: 'fqdn:gw.example',
        psk: 'a-long-enough-psk-0123456789',
        local_ts: ['10.1.0.0/16'],
        remote_ts: ['10.2.0.0/16'],
        mode: 'policy',
        ...over,
      },
    ],
  };
}

function errorsOf(d: unknown): string[] {
  try {
    parseDaemonConfig(d);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigValidationError);
    return (e as ConfigValidationError).errors.map((x: ConfigError) => `${x.path}: ${x.message.replace(/^\S+: /, '')}`);
  }
  throw new Error('accepted');
}

describe('health_check', () => {
  it('parses with defaults (interval 10 s, timeout 2 s, 3 failures)', () => {
    const t = parseDaemonConfig(doc({ health_check: { target: '10.2.0.1' } })).tunnels[0]!;
    expect(t.healthCheck).toEqual({ target: '10.2.0.1', interval: 10, timeout: 2, failures: 3 });
    const u = parseDaemonConfig(doc({ health_check: { target: '10.2.0.1', source: '10.1.0.1', interval: 5, timeout: 1, failures: 2 } })).tunnels[0]!;
    expect(u.healthCheck).toEqual({ target: '10.2.0.1', source: '10.1.0.1', interval: 5, timeout: 1, failures: 2 });
    expect(parseDaemonConfig(doc({})).tunnels[0]!.healthCheck).toBeUndefined();
  });

  it.each([
    ['not an object', 'ping 10.2.0.1', /tunnels\[0\]\.health_check: must be an object/],
    ['no target', { interval: 5 }, /health_check\.target: is required/],
    ['host name', { target: 'peer.example' }, /health_check\.target: .*not an IP address/],
    ['outside remote_ts', { target: '10.9.0.1' }, /health_check\.target: 10\.9\.0\.1 is outside remote_ts \(10\.2\.0\.0\/16\)/],
    ['source outside local_ts', { target: '10.2.0.1', source: '10.7.0.1' }, /health_check\.source: 10\.7\.0\.1 is outside local_ts/],
    ['interval 0', { target: '10.2.0.1', interval: 0 }, /health_check\.interval: must be between 1 and 3600, got 0/],
    ['timeout > interval', { target: '10.2.0.1', interval: 2, timeout: 5 }, /health_check\.timeout: must not exceed interval \(2 s\), got 5/],
    ['failures 0', { target: '10.2.0.1', failures: 0 }, /health_check\.failures: must be between 1 and 100/],
    ['unknown key', { target: '10.2.0.1', intervall: 3 }, /health_check\.intervall: unknown key \(did you mean 'interval'\?\)/],
  ])('refuses %s with a field-level message', (_what, hc, re) => {
    const errs = errorsOf(doc({ health_check: hc }));
    expect(errs.join('\n')).toMatch(re);
  });
});

describe('dpd_mode and dpd_action hold', () => {
  it('accepts on-idle / periodic and hold', () => {
    const t = parseDaemonConfig(doc({ dpd_mode: 'periodic', dpd_action: 'hold' })).tunnels[0]!;
    expect(t.dpdMode).toBe('periodic');
    expect(t.dpdAction).toBe('hold');
    expect(parseDaemonConfig(doc({ dpd_mode: 'on-idle' })).tunnels[0]!.dpdMode).toBe('on-idle');
  });
  it('refuses other modes and hold without remote_addr', () => {
    expect(errorsOf(doc({ dpd_mode: 'on-demand' })).join('\n')).toMatch(/dpd_mode: must be one of 'on-idle', 'periodic', got 'on-demand'/);
    expect(errorsOf(doc({ dpd_action: 'hold', remote_addr: undefined, start_action: undefined })).join('\n')).toMatch(/dpd_action: 'hold' needs remote_addr/);
  });
});

describe('CLI --set health_check', () => {
  it('takes KEY=VALUE pairs or a JSON object; the daemon validates the result with the config messages', async () => {
    const { tunnelField } = await import('../../firmware/control/cli-config.js');
    expect(tunnelField('health_check=target=10.2.0.1,interval=5,failures=2')).toEqual(['health_check', { target: '10.2.0.1', interval: 5, failures: 2 }]);
    expect(tunnelField('health_check={"target":"10.2.0.1","timeout":1}')).toEqual(['health_check', { target: '10.2.0.1', timeout: 1 }]);
    expect(() => tunnelField('health_check={"target":')).toThrow(/expects a JSON object/);
    expect(() => tunnelField('health_check=10.2.0.1')).toThrow(/KEY=VALUE pairs/);
    const [, hc] = tunnelField('health_check=target=10.9.0.1,interval=abc');
    const errs = errorsOf(doc({ health_check: hc })).join('\n');
    expect(errs).toMatch(/health_check\.target: 10\.9\.0\.1 is outside remote_ts/);
    expect(errs).toMatch(/health_check\.interval: must be an integer/);
  });
});
