import { spawn, type ChildProcess } from 'node:child_process';
import { open, readFile } from 'node:fs/promises';
import { sleep, SUPERVISOR, type AgentContext } from '../agent-context';
import { LogShipper } from '../logs/log-shipper';
import { PUBLISH_ATTEMPTS_MAX, PUBLISH_RETRY_MS, type RunReports } from '../reporting/run-reports';
import { storeResult } from '../results/result-store';
import { runKey, type RunCommand } from './command.decider';
import { groupMembers, processAlive, processStartTicks, readOomKills, signalGroup } from './processes';
import type { ActiveRun } from './run-book';
import { classifyRunEnd, exitCodeOf, type ProcessEnd, type ResultCheck } from './run-outcome';
import type { RunRecord } from './state-store';
import { openResult, prepareRunDirectories, readSecret, removeRunDirectory, runPaths, type RunPaths } from './workspace';

/** How often a run the agent did not spawn (adopted after a restart) is checked. */
export const ADOPTED_POLL_MS = 200;
/** How often a process group being emptied is checked, and how long a SIGKILL may take. */
const GROUP_POLL_MS = 50;
export const GROUP_KILL_WAIT_MS = 5000;
/** Retries of a result upload. */
const RESULT_ATTEMPTS_MAX = 3;
const SUPERVISOR_START_TIMEOUT_MS = 10_000;

/**
 * Runs as processes (docs/node-agent.md, "Process groups"): each RunSubtask's workload is started
 * below a supervisor (supervisor.mjs) that leads its own session and process group; stops,
 * timeouts and leftovers signal the whole group (SIGTERM, the grace period, SIGKILL); when the
 * supervisor is gone the run's end is read from its status file, its result stored, and its
 * report delivered.
 */
export class RunSupervisor {
  constructor(
    private readonly context: AgentContext,
    private readonly reports: RunReports,
  ) {}

  private get bus() {
    return this.context.bus;
  }

  private get config() {
    return this.context.config;
  }

  private get host() {
    return this.context.host;
  }

  private get book() {
    return this.context.book;
  }

  private log(level: 'info' | 'warn' | 'error', message: string): void {
    this.context.log(level, message);
  }

  newRun(record: RunRecord): ActiveRun {
    const command = record.command;
    const workload = command.workload!;
    const paths = runPaths(this.config.workRoot, command.subtaskId, command.attempt, workload);
    const subject = this.bus.topology.subjects.logs(command.tenantId, command.jobId, workload.subtaskIndex, command.attempt);
    const shipper = new LogShipper(
      this.bus.js,
      subject,
      command.commandId,
      { stdout: paths.stdoutFile, stderr: paths.stderrFile },
      { chunkBytesMax: this.host.logChunkBytesMax, attemptBytesMax: this.config.logAttemptBytesMax, pollMs: this.config.logPollMs, partialFlushMs: this.config.logPartialFlushMs },
      (error) => this.log('warn', `logs of ${record.key}: ${error.message}`),
    );
    const run: ActiveRun = { record, paths, command, shipper };
    this.book.runs.set(record.key, run);
    return run;
  }

  private async runEnvironment(command: RunCommand, paths: RunPaths): Promise<Record<string, string>> {
    const workload = command.workload!;
    const secrets: Record<string, string> = {};
    for (const secret of workload.secrets ?? []) secrets[secret.env] = await readSecret(this.config.secretsDir, command.tenantId, secret.secret);
    const uuids = command.gpuIndices.map((index) => this.host.gpus[index]!.uuid).join(',');
    return {
      PATH: this.config.runPath,
      HOME: paths.workDir,
      ...workload.env,
      ...secrets,
      CUDA_VISIBLE_DEVICES: uuids,
      NVIDIA_VISIBLE_DEVICES: uuids,
      FASTGPU_JOB_ID: command.jobId,
      FASTGPU_SUBTASK_ID: command.subtaskId,
      FASTGPU_ATTEMPT: String(command.attempt),
      FASTGPU_SUBTASK_INDEX: String(workload.subtaskIndex),
      FASTGPU_SUBTASK_COUNT: String(workload.subtaskCount),
      JOB_COMPLETION_INDEX: String(workload.subtaskIndex),
      FASTGPU_RESULT_PATH: paths.resultFile,
      ...(workload.input === undefined ? {} : { FASTGPU_INPUT: workload.input }),
    };
  }

  async startRun(command: RunCommand, traceparent: string | undefined): Promise<void> {
    const key = runKey(command.subtaskId, command.attempt);
    this.book.rememberPlacement(command);
    // Recorded before anything is spawned: a crash from here on leaves a trace to follow.
    const record: RunRecord = { key, command, phase: 'starting', ...(traceparent ? { traceparent } : {}) };
    const run = this.newRun(record);
    await this.book.save();
    let child: ChildProcess | undefined;
    let exited: Promise<void> | undefined;
    try {
      await removeRunDirectory(run.paths.runDir);
      await prepareRunDirectories(run.paths, { uid: this.config.runUid, gid: this.config.runGid });
      const env = await this.runEnvironment(command, run.paths);
      const workload = command.workload!;
      const stdout = await open(run.paths.stdoutFile, 'a', 0o600);
      const stderr = await open(run.paths.stderrFile, 'a', 0o600);
      try {
        child = spawn(process.execPath, [SUPERVISOR, run.paths.runDir], { detached: true, cwd: run.paths.runDir, env: {}, stdio: ['pipe', stdout.fd, stderr.fd] });
        await new Promise<void>((resolveSpawn, rejectSpawn) => {
          const timer = setTimeout(() => rejectSpawn(new Error('the supervisor did not start in time')), SUPERVISOR_START_TIMEOUT_MS);
          child!.once('spawn', () => {
            clearTimeout(timer);
            resolveSpawn();
          });
          child!.once('error', (error) => {
            clearTimeout(timer);
            rejectSpawn(error);
          });
        });
      } finally {
        await stdout.close();
        await stderr.close();
      }
      const spec = { argv: workload.command, env, cwd: run.paths.cwd, uid: this.config.runUid, gid: this.config.runGid };
      child.stdin!.end(JSON.stringify(spec));
      const pid = child.pid!;
      run.child = child;
      // Ending waits until the start is recorded and reported (below), so SubtaskStarted precedes the end.
      exited = new Promise<void>((resolveExit) => child!.once('exit', () => resolveExit()));
      record.pid = pid;
      record.startTicks = await processStartTicks(pid);
      record.startedAtMs = Date.now();
      record.startedAt = new Date(record.startedAtMs).toISOString();
      record.oomKillsAtStart = this.host.oomCounterFile ? await readOomKills(this.host.oomCounterFile) : undefined;
      record.phase = 'running';
      await this.book.save();
    } catch (error) {
      // The agent could not run it (directories, secrets, the supervisor): a platform fault.
      this.log('error', `could not start ${key}: ${(error as Error).message}`);
      if (child?.pid) signalGroup(child.pid, 'SIGKILL');
      record.phase = 'ended';
      record.report = { kind: 'failed', exitCode: -1, fault: 'platform', failureKind: 'agent', reason: `the agent could not start it: ${(error as Error).message}`.slice(0, 500), endedAt: new Date().toISOString() };
      await this.book.save();
      run.ending = this.deliverReport(run).catch((reportError: Error) => this.log('error', `reporting ${key}: ${reportError.message}`));
      return;
    }
    run.shipper.start();
    this.armTimeout(run);
    try {
      await this.reports.started(run);
      this.log('info', `started ${key} (process group ${record.pid}) on GPUs ${command.gpuIndices.join(',') || 'none'}`);
    } finally {
      void exited?.then(() => this.onSupervisorGone(run));
    }
  }

  armTimeout(run: ActiveRun): void {
    const record = run.record;
    if (record.timedOutAtMs !== undefined || record.startedAtMs === undefined) return;
    const remainingMs = Math.max(0, record.startedAtMs + run.command.workload!.timeoutMs - Date.now());
    run.timeoutTimer = setTimeout(() => {
      if (this.context.closed() || record.phase === 'ended' || record.stopRequestedAtMs !== undefined) return;
      record.timedOutAtMs = Date.now();
      this.book
        .save()
        .catch(() => undefined)
        .finally(() => this.killGroup(run));
    }, remainingMs);
  }

  async requestStop(run: ActiveRun, why: string): Promise<void> {
    const record = run.record;
    if (record.phase === 'ended' || record.stopRequestedAtMs !== undefined) return;
    record.stopRequestedAtMs = Date.now();
    this.book.rememberEnded(record.key);
    await this.book.save();
    this.log('info', `stopping ${record.key}: ${why}`);
    this.killGroup(run);
  }

  /** SIGTERM to the whole process group, SIGKILL after the grace period. */
  killGroup(run: ActiveRun): void {
    const pgid = run.record.pid;
    if (pgid === undefined) return;
    signalGroup(pgid, 'SIGTERM');
    if (run.killTimer) clearTimeout(run.killTimer);
    run.killTimer = setTimeout(() => signalGroup(pgid, 'SIGKILL'), this.config.stopGraceMs);
  }

  private onSupervisorGone(run: ActiveRun): void {
    if (this.context.closed() || run.ending) return;
    run.ending = this.endRun(run).catch((error: Error) => this.log('error', `ending ${run.record.key}: ${error.message}`));
  }

  /** The supervisor is gone: empty the group, read how it ended, keep its result, report. */
  async endRun(run: ActiveRun): Promise<void> {
    const record = run.record;
    if (run.pollTimer) clearTimeout(run.pollTimer);
    if (run.timeoutTimer) clearTimeout(run.timeoutTimer);
    await this.emptyGroup(run);
    if (run.killTimer) clearTimeout(run.killTimer);
    const end = await this.readStatus(run.paths.statusFile);
    const stopped = record.stopRequestedAtMs !== undefined;
    const killedAtRestart = record.killedAtRestart === true;
    const result: ResultCheck = stopped || killedAtRestart ? { kind: 'not-checked' } : await this.keepResult(run, end);
    const oomNow = this.host.oomCounterFile ? await readOomKills(this.host.oomCounterFile) : undefined;
    const oomKillsDuringRun = oomNow !== undefined && record.oomKillsAtStart !== undefined ? oomNow - record.oomKillsAtStart : undefined;
    const report = classifyRunEnd({
      end,
      program: run.command.workload!.command[0]!,
      resultPath: run.command.workload!.resultPath,
      timeoutMs: run.command.workload!.timeoutMs,
      stoppedByAgent: stopped,
      timedOut: record.timedOutAtMs !== undefined,
      killedAtRestart,
      sawRestart: record.sawRestart === true,
      oomKillsDuringRun,
      result,
    });
    record.phase = 'ended';
    record.report = { ...report, endedAt: new Date().toISOString() };
    await this.book.save();
    await this.deliverReport(run);
  }

  /** Ships the last output, publishes the report, forgets the run. Safe to repeat (ids derive from the command). */
  async deliverReport(run: ActiveRun): Promise<void> {
    const record = run.record;
    const report = record.report!;
    for (let attempt = 1; ; attempt++) {
      try {
        await run.shipper.finish();
        break;
      } catch (error) {
        if (attempt >= PUBLISH_ATTEMPTS_MAX || this.context.closed()) {
          this.log('error', `logs of ${record.key} not finished: ${(error as Error).message}`);
          break;
        }
        await sleep(PUBLISH_RETRY_MS);
      }
    }
    if (this.context.closed()) return;
    await this.reports.ended(run.command, report, record.traceparent);
    if (this.context.closed()) return;
    this.book.runs.delete(record.key);
    this.book.rememberEnded(record.key);
    await this.book.save();
    await removeRunDirectory(run.paths.runDir);
    this.log('info', `${record.key} ended: ${report.kind === 'failed' ? `${report.failureKind} (${report.fault}): ${report.reason}` : report.kind}`);
  }


  private async emptyGroup(run: ActiveRun): Promise<void> {
    const pgid = run.record.pid;
    if (pgid === undefined) return;
    if ((await groupMembers(pgid)).length === 0) return;
    signalGroup(pgid, 'SIGTERM');
    const graceEnd = Date.now() + this.config.stopGraceMs;
    while (Date.now() < graceEnd && (await groupMembers(pgid)).length > 0) await sleep(GROUP_POLL_MS);
    signalGroup(pgid, 'SIGKILL');
    const killEnd = Date.now() + GROUP_KILL_WAIT_MS;
    while (Date.now() < killEnd && (await groupMembers(pgid)).length > 0) await sleep(GROUP_POLL_MS);
    const left = await groupMembers(pgid);
    if (left.length > 0) this.log('error', `process group ${pgid} of ${run.record.key} still has ${left.join(', ')} after SIGKILL`);
  }

  private async readStatus(file: string): Promise<ProcessEnd> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      return { kind: 'vanished' };
    }
    try {
      const status = JSON.parse(text) as Record<string, unknown>;
      if (status.kind === 'exited' && Number.isInteger(status.code)) return { kind: 'exited', code: status.code as number };
      if (status.kind === 'signaled' && typeof status.signal === 'string') return { kind: 'signaled', signal: status.signal };
      if (status.kind === 'spawn-failed') return { kind: 'spawn-failed', errorCode: String(status.errorCode).slice(0, 32), message: String(status.message).slice(0, 300) };
    } catch {
      // An unreadable status is no status.
    }
    return { kind: 'vanished' };
  }

  private async keepResult(run: ActiveRun, end: ProcessEnd): Promise<ResultCheck> {
    const c = run.command;
    const workload = c.workload!;
    const file = await openResult(run.paths, workload.resultPath, Math.min(workload.resultBytesMax, this.config.resultBytesMax));
    if (file.kind !== 'ready') return file;
    try {
      if (!this.host.results) return { kind: 'store-failed', reason: `results bucket ${this.bus.topology.buckets.results} unavailable` };
      const metadata = {
        tenantId: c.tenantId,
        jobId: c.jobId,
        subtaskId: c.subtaskId,
        subtaskIndex: String(workload.subtaskIndex),
        attempt: String(c.attempt),
        nodeId: this.config.nodeId,
        exitCode: String(exitCodeOf(end)),
        sha256: file.sha256,
        storedAt: new Date().toISOString(),
      };
      for (let attempt = 1; ; attempt++) {
        try {
          await storeResult(this.host.results, metadata, file);
          return { kind: 'stored', bytes: file.bytes, sha256: file.sha256 };
        } catch (error) {
          if (attempt >= RESULT_ATTEMPTS_MAX) return { kind: 'store-failed', reason: (error as Error).message.slice(0, 300) };
          await sleep(PUBLISH_RETRY_MS);
        }
      }
    } finally {
      await file.handle.close();
    }
  }


  pollAdopted(run: ActiveRun): void {
    const check = async () => {
      if (this.context.closed() || run.ending) return;
      const { pid, startTicks } = run.record;
      if (pid !== undefined && startTicks !== undefined && (await processAlive(pid, startTicks))) {
        run.pollTimer = setTimeout(() => void check(), ADOPTED_POLL_MS);
        return;
      }
      this.onSupervisorGone(run);
    };
    run.pollTimer = setTimeout(() => void check(), ADOPTED_POLL_MS);
  }

}
