import { openOperatorDatabase } from './cli-context';
import { runReconcile } from './reconcile';

// `tsx apps/metering/src/cli/reconcile.cli.ts [--tenant <id>]` (also `npm run replay -- reconcile`).
const handle = await openOperatorDatabase();
try {
  process.exitCode = await runReconcile(process.argv.slice(2), handle.db, { out: (line) => process.stdout.write(`${line}\n`) });
} finally {
  await handle.close();
}
