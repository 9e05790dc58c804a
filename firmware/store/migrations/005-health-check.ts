/**
 * Schema v5: `tunnels.health_check`, the active health probe of a tunnel
 * (docs/config.md; firmware/health): a JSON object (target, source,
 * interval, timeout, failures) validated by parseDaemonConfig before every
 * write; NULL = no probe. A column of its own rather than a key in
 * `options`: the boot health gate and the dashboard read it, and the CHECK
 * keeps it an object. (dpd_mode and dpd_action 'hold' live in `options`,
 * which needs no schema change.)
 *
 * Data: existing rows get NULL (no probe), which is what they meant.
 * FROZEN once released: never edit; add a new migration instead.
 */
import type { Migration } from './types.js';

export const migration005: Migration = {
  version: 5,
  name: 'health-check',
  steps: [`ALTER TABLE tunnels ADD COLUMN health_check TEXT CHECK (health_check IS NULL OR json_type(health_check) = 'object')`],
};
