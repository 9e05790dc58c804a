/** Every fuzz target, in the order `--target all` runs them. */
import type { FuzzTarget } from '../lib/target.js';
import { ikeParse } from './ike-parse.js';
import { skDecrypt } from './sk-decrypt.js';
import { reassembly } from './reassembly.js';
import { espDecap } from './esp-decap.js';
import { configImport } from './config-import.js';
import { restApi } from './rest-api.js';

export const TARGETS: FuzzTarget<any>[] = [ikeParse, skDecrypt, reassembly, espDecap, configImport, restApi];

export function targetByName(name: string): FuzzTarget<any> | undefined {
  return TARGETS.find((t) => t.name === name);
}
