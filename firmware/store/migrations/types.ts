/** One schema migration: SQL steps run in one transaction, then `PRAGMA user_version = version`. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly steps: readonly string[];
}
