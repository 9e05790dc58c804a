/**
 * image/overlay/usr/lib/pqgate/upgrade-idle: the shell check that lets
 * `service upgrade-boot` skip starting node on a normal boot. It must never
 * say "idle" when bootCheck (firmware/upgrade/device-boot.ts) would do
 * something: at every step of the upgrade lifecycles below, an idle verdict
 * is checked against the real bootCheck on the same files (action 'none',
 * nothing on the ESP or in the state directory changed).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bootCheck } from '../../firmware/upgrade/device-boot.js';
import type { GateResult } from '../../firmware/upgrade/health-gate.js';
import { makeBundle, makeFakeDevice, type FakeDevice } from './fake-device.js';
import { simulateBoot } from './sdboot-model.js';

const SCRIPT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'image', 'overlay', 'usr', 'lib', 'pqgate', 'upgrade-idle');
const pass = async (): Promise<GateResult> => ({ ok: true, elapsedMs: 1000 });
const quiet = () => undefined;

let dev: FakeDevice | undefined;
afterEach(() => {
  dev?.cleanup();
  dev = undefined;
});

function idle(d: FakeDevice, cmdline = `BOOT_IMAGE=/x fw.slot=${d.running.slot ?? ''} console=ttyS0`): boolean {
  const f = join(d.root, 'cmdline');
  writeFileSync(f, cmdline + '\n');
  const r = spawnSync('sh', [SCRIPT, d.esp, d.state, f], { encoding: 'utf8' });
  if (r.status !== 0 && r.status !== 1) throw new Error(`upgrade-idle exited ${r.status}: ${r.stderr}`);
  return r.status === 0;
}

/** Every file under a directory with its size and mtime. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const n of names.sort()) {
      const p = join(d, n);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else out.push(`${p} ${st.size} ${st.mtimeMs}`);
    }
  };
  walk(dir);
  return out;
}

/** The boot check of one boot; when the shell says idle, bootCheck must agree and touch nothing. */
async function boot(d: FakeDevice): Promise<{ idle: boolean; action: string }> {
  const verdict = idle(d);
  const before = [...snapshot(d.esp), ...snapshot(d.state)];
  const r = await bootCheck(d.backend, pass, quiet);
  if (verdict) {
    expect(r.action).toBe('none');
    expect([...snapshot(d.esp), ...snapshot(d.state)]).toEqual(before);
  }
  return { idle: verdict, action: r.action };
}

describe('upgrade-idle', () => {
  it('factory-fresh device: idle; not booted from a slot or no ESP: node decides', async () => {
    dev = makeFakeDevice();
    expect(await boot(dev)).toEqual({ idle: true, action: 'none' });
    expect(idle(dev, 'console=ttyS0 root=/dev/vda2')).toBe(false);
    expect(idle(dev, 'xfw.slot=a')).toBe(false);
    dev.running.slot = 'b';
    expect(await boot(dev)).toEqual({ idle: true, action: 'none' });
    const noEsp = { ...dev, esp: join(dev.root, 'not-mounted') };
    expect(idle(noEsp)).toBe(false);
  });

  it('upgrade committed: not idle on the trial boot, idle afterwards', async () => {
    dev = makeFakeDevice();
    const b = makeBundle(dev.root, '2.0.0');
    await dev.backend.writeInactive(b.path, b.images);
    await dev.backend.markTrial('b', b.header);
    expect(idle(dev)).toBe(false); // pending record (still on A)
    dev.running.slot = simulateBoot(dev.esp)!;
    expect(await boot(dev)).toEqual({ idle: false, action: 'blessed' });
    expect(await boot(dev)).toEqual({ idle: true, action: 'none' });
  });

  it('failed upgrade: trial boots and the rollback are never idle; idle once recorded', async () => {
    dev = makeFakeDevice();
    const b = makeBundle(dev.root, '2.0.0');
    await dev.backend.writeInactive(b.path, b.images);
    await dev.backend.markTrial('b', b.header);
    const actions: string[] = [];
    for (let i = 0; i < 4; i++) {
      dev.running.slot = simulateBoot(dev.esp)!;
      const fail = async (): Promise<GateResult> => ({ ok: false, reason: 'daemon: down', elapsedMs: 1 });
      const v = idle(dev);
      expect(v).toBe(false);
      actions.push(`${dev.running.slot}:${(await bootCheck(dev.backend, dev.running.slot === 'b' ? fail : pass, quiet)).action}`);
    }
    expect(actions).toEqual(['b:reboot', 'b:reboot', 'b:reboot', 'a:rolled-back']);
    // The failed slot's counted entry (slot-b+0-3.conf) stays; the rollback is recorded: idle again.
    expect(await boot(dev)).toEqual({ idle: true, action: 'none' });
  });

  it('leftovers of an interrupted write or a stray entry: not idle', async () => {
    dev = makeFakeDevice();
    writeFileSync(join(dev.esp, 'pqgate-b', 'vmlinuz.pqgate-tmp'), 'partial');
    expect(await boot(dev)).toMatchObject({ idle: false, action: 'none' });
    expect(readdirSync(join(dev.esp, 'pqgate-b'))).not.toContain('vmlinuz.pqgate-tmp');
    expect(idle(dev)).toBe(true);
    writeFileSync(join(dev.esp, 'loader', 'entries', 'slot-a.conf.pqgate-tmp'), 'x');
    expect(idle(dev)).toBe(false);
    await bootCheck(dev.backend, pass, quiet);
    expect(idle(dev)).toBe(true);
    writeFileSync(join(dev.esp, 'loader', 'entries', 'slot-a+3-0.conf'), readFileSync(join(dev.esp, 'loader', 'entries', 'slot-a.conf')));
    expect(idle(dev)).toBe(false); // a second (trial) entry for the running slot
    await bootCheck(dev.backend, pass, quiet);
    writeFileSync(join(dev.esp, 'loader', 'entries', 'other.conf'), 'title x\n');
    expect(idle(dev)).toBe(false);
  });

  it('a pending record alone (power cut between bless and the outcome): not idle', async () => {
    dev = makeFakeDevice();
    mkdirSync(dev.state, { recursive: true });
    writeFileSync(join(dev.state, 'pending.json'), '{}');
    expect(idle(dev)).toBe(false);
  });
});
