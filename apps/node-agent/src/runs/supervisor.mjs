// The supervisor of one run (a small plain-JavaScript process, started by the node agent with
// `node supervisor.mjs <runDir>` as the leader of a new session and process group). It exists so
// a run outlives an agent restart and still leaves a truthful exit status:
//   1. it writes <runDir>/supervisor.json (its pid) so a restarted agent can find it;
//   2. it reads the run's spec (argv, env, cwd, uid, gid) from stdin, so no secret is on disk
//      and nothing the workload sets (NODE_OPTIONS, say) reaches this process;
//   3. it spawns the program in its own process group (not detached), with stdout/stderr
//      inherited (the log files the agent opened), under the uid/gid when given;
//   4. it ignores the termination signals the agent sends to the group, so it outlives the
//      program, and writes <runDir>/status.json (exit code, signal, or why it could not start)
//      atomically before it exits. SIGKILL ends it too; the agent then knows it killed the run.
import { spawn } from 'node:child_process';
import { closeSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Buffer } from 'node:buffer';
import process from 'node:process';

const SPEC_BYTES_MAX = 4 * 1024 * 1024;
const runDir = process.argv[2];
if (!runDir) {
  process.stderr.write('supervisor: missing run directory\n');
  process.exit(2);
}

function writeAtomically(name, value) {
  const path = join(runDir, name);
  const temporary = `${path}.tmp`;
  const fd = openSync(temporary, 'w', 0o600);
  try {
    writeSync(fd, JSON.stringify(value));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, path);
}

for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGPIPE']) process.on(signal, () => undefined);
writeAtomically('supervisor.json', { pid: process.pid });

const chunks = [];
let received = 0;
process.stdin.on('data', (chunk) => {
  received += chunk.length;
  if (received > SPEC_BYTES_MAX) {
    writeAtomically('status.json', { kind: 'spawn-failed', errorCode: 'E2BIG', message: 'run spec too large' });
    process.exit(0);
  }
  chunks.push(chunk);
});
process.stdin.on('end', () => {
  let spec;
  try {
    spec = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (error) {
    writeAtomically('status.json', { kind: 'spawn-failed', errorCode: 'EINVAL', message: `unreadable run spec: ${error.message}` });
    process.exit(0);
  }
  let settled = false;
  const finish = (status) => {
    if (settled) return;
    settled = true;
    writeAtomically('status.json', status);
    process.exit(0);
  };
  const child = spawn(spec.argv[0], spec.argv.slice(1), {
    cwd: spec.cwd,
    env: spec.env,
    stdio: ['ignore', 'inherit', 'inherit'],
    ...(spec.uid === undefined ? {} : { uid: spec.uid }),
    ...(spec.gid === undefined ? {} : { gid: spec.gid }),
  });
  child.on('error', (error) => finish({ kind: 'spawn-failed', errorCode: error.code ?? 'UNKNOWN', message: String(error.message).slice(0, 300) }));
  child.on('exit', (code, signal) => finish(signal ? { kind: 'signaled', signal } : { kind: 'exited', code: code ?? -1 }));
});
