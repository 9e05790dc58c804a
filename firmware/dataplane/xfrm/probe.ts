/**
 * Does this kernel do ESP? The data plane is chosen automatically: the kernel
 * (XFRM) when it can, the userspace ESP over TUN otherwise (this build
 * machine's kernel has XFRM but no ESP, for instance).
 *
 * Checks, cheapest first, from /proc and /sys only (no module loading here:
 * the image's init loads esp4/esp6/xfrm_interface at boot):
 *  1. XFRM netlink: /proc/net/xfrm_stat exists (CONFIG_XFRM_STATISTICS) or
 *     the xfrm_user module is loaded/built in;
 *  2. ESP: esp4 loaded (/sys/module/esp4) or built in (modules.builtin);
 *  3. AEAD: the kernel crypto API lists rfc4106(gcm(aes)) in /proc/crypto
 *     (registered when esp4 loads its GCM template on first use, so a
 *     missing entry is only a warning).
 */
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';

export interface XfrmProbe {
  ok: boolean;
  /** Why not (or notes when ok). */
  reasons: string[];
}

export interface ProbeFs {
  exists(path: string): boolean;
  read(path: string): string | undefined;
  kernelRelease: string;
}

const realFs: ProbeFs = {
  exists: existsSync,
  read: (p) => {
    try {
      return readFileSync(p, 'utf8');
    } catch {
      return undefined;
    }
  },
  kernelRelease: release(),
};

function moduleAvailable(fs: ProbeFs, name: string): boolean {
  if (fs.exists(`/sys/module/${name}`)) return true;
  const builtin = fs.read(`/lib/modules/${fs.kernelRelease}/modules.builtin`) ?? '';
  return builtin.split('\n').some((l) => l.endsWith(`/${name}.ko`));
}

export function probeKernelXfrm(fs: ProbeFs = realFs): XfrmProbe {
  const reasons: string[] = [];
  if (!fs.exists('/proc/net/xfrm_stat') && !moduleAvailable(fs, 'xfrm_user')) reasons.push('no XFRM netlink (xfrm_user)');
  if (!moduleAvailable(fs, 'esp4')) reasons.push('no ESP in the kernel (esp4 not loaded or built in)');
  const ok = reasons.length === 0;
  if (ok && !/rfc4106\(gcm\(aes\)\)|gcm\(aes\)/.test(fs.read('/proc/crypto') ?? '')) reasons.push('note: gcm(aes) not registered yet (loaded on first use)');
  return { ok, reasons };
}
