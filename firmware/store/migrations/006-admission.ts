/**
 * Schema v6: `device_settings.admission`, the global IKE_SA_INIT admission
 * limits (docs/config.md "DoS protection", docs/dos.md; strongSwan's
 * charon.cookie_threshold, cookie_threshold_ip, block_threshold,
 * init_limit_half_open and a half-open timeout): a JSON object holding
 * exactly the top-level document keys the user set, validated by
 * parseDaemonConfig before every write; NULL = the defaults. One JSON column
 * rather than five: the keys are read and written together and later
 * firmware may add limits without another table rebuild.
 *
 * Data: existing rows get NULL (the defaults), which is what they meant.
 * FROZEN once released: never edit; add a new migration instead.
 */
import type { Migration } from './types.js';

export const migration006: Migration = {
  version: 6,
  name: 'admission',
  steps: [`ALTER TABLE device_settings ADD COLUMN admission TEXT CHECK (admission IS NULL OR json_type(admission) = 'object')`],
};
