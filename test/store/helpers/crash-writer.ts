/**
 * Child process of the crash test (test/store/crash.test.ts). Loads the
 * store's write path and opens the database (db.ts: migrations, checks,
 * WAL), prints "ready", and on a line from stdin commits revisions in a
 * tight loop through commitRevision (the transaction every store change goes
 * through), printing "committed <id>" after each commit returned. The parent
 * SIGKILLs it at a random moment. Transpiled to JavaScript by the test, so
 * it starts without a TypeScript loader.
 */
import { writeSync } from 'node:fs';
import { openDatabase } from '../../../firmware/store/db.js';
import { commitRevision, latestRevision } from '../../../firmware/store/persist.js';
import { crashRevision } from './crash-docs.js';

const db = openDatabase(process.argv[2]!);
writeSync(1, 'ready\n');
process.stdin.once('data', () => {
  // Read only now: while this process waited, the previous writer was still committing.
  let next = latestRevision(db)!.id + 1;
  writeSync(1, `start ${next - 1}\n`);
  for (;;) {
    const { doc, presets } = crashRevision(next);
    const r = commitRevision(db, { doc, presets, author: 'crash-writer', comment: `rev ${next}`, kind: 'apply', now: Date.now() });
    if (r.revision.id !== next) {
      writeSync(1, `error expected revision ${next}, got ${r.revision.id}\n`);
      process.exit(2);
    }
    writeSync(1, `committed ${next}\n`);
    next++;
  }
});
