import type { VerifiedBundle, VerifyOptions } from './types.js';
import { UpgradeError } from './types.js';

/** Verify a bundle file before any write. First signature; implementation follows. */
export async function verifyBundleFile(path: string, opts: VerifyOptions): Promise<VerifiedBundle> {
  void path; void opts;
  throw new UpgradeError('BAD_FORMAT', 'bundle verification not implemented yet');
}
