import type { Kysely } from 'kysely';
import { parseArgs } from 'node:util';
import { DeliverPolicy } from '@nats-io/jetstream';
import { eventTypes, idSchema, LogHeader, type StoredEvent } from '@fastgpu/contracts';
import type { Database } from '@fastgpu/db';
import type { Bus } from '@fastgpu/messaging';
import { foldJob, foldNode, foldTenantUsage } from './as-of.fold';
import { countDeadLetters, deadLetterSiblings, getDeadLetter, groupByOriginal, listDeadLetters, purgeDeadLetters, redrive, type DeadLetter } from './dlq';
import { decodeMessage, eventJson, formatEvent, matches, stripPrefix, type EventFilter } from './format';
import { CliError, readLog, streamBounds } from './log-reader';
import { runReplay } from './replay';
import { logEventOf } from '../../../../intake/src/outputs/log-events';

export interface CliIo {
  out(line: string): void;
  err(line: string): void;
  /** Asks a yes/no question on a terminal; absent when stdin is not a TTY. */
  confirm?(question: string): Promise<boolean>;
  /** Rewrites the current terminal line (replay progress). */
  progress?(line: string): void;
}
export interface CliContext {
  bus: Bus;
  io: CliIo;
  /** Ends `tail` (Ctrl-C). */
  signal?: AbortSignal;
  /** For `replay`, which needs the database. */
  openDatabase?: () => Promise<{ db: Kysely<Database>; close(): Promise<void> }>;
}

export const HELP: Record<string, string> = {
  main: `Usage: npm run events -- <command> [options]

Commands:
  tail                 follow events live (filters: --tenant --job --node --type; --json)
  show <subject|id>    one aggregate's history (e.g. intake.job.<jobId>, or just <jobId>)
  as-of <seq|time>     state of --job, --node or --tenant usage as of a stream sequence or time
  dlq <list|show|redrive|purge>   inspect and re-drive the dead-letter stream
  replay <projection>  rebuild a projection into fresh tables, diff, swap (see replay --help)
  logs <jobId>         a job's stdout/stderr from the LOGS stream (--subtask --attempt --follow)

Run "npm run events -- <command> --help" for a command's options.
Environment: NATS_URL, FASTGPU_PREFIX (subject/stream prefix), DATABASE_URL (replay).`,
  tail: `Usage: npm run events -- tail [--tenant T] [--job J] [--node N] [--type T1,T2] [--from SEQ | --last N] [--no-follow] [--json]
Follows the domain log and prints one line per event (or one JSON object per line with --json).
By default it starts at the end and follows new events until Ctrl-C.
  --from SEQ     start at stream sequence SEQ      --last N     start N events before the end
  --no-follow    print what is stored and exit`,
  show: `Usage: npm run events -- show <subject | id> [--json]
Prints the history of one aggregate in log order. A subject may be given in full
(<prefix>.evt.intake.job.<id>) or without the prefix (intake.job.<id>); a bare id shows
every aggregate subject ending in that id (e.g. intake.job.<id> and scheduler.job.<id>).`,
  'as-of': `Usage: npm run events -- as-of <sequence | ISO time> (--job J | --node N | --tenant T) [--json]
Folds the events up to and including that stream sequence (or the last one stored at or before
that time) into the state of a job, a node, or a tenant's recorded usage.`,
  dlq: `Usage: npm run events -- dlq <list | show <seq> | redrive <seq>|--all | purge> [options]
  list     [--consumer C] [--json]   dead letters with consumer, original subject, reason, count
  show     <seq> [--json]            one dead letter: headers, reason and body
  redrive  <seq> | --all [--consumer C] [--force]
           republish to the original subject with the original headers and remove it; if the
           cause is not fixed it fails again and comes back with its count grown. Bodies that
           still do not decode are refused unless --force.
  purge    [--consumer C] [--yes]    delete dead letters (asks for confirmation, or --yes)`,
  logs: `Usage: npm run events -- logs <jobId> [--subtask N] [--attempt A] [--follow] [--json]
Prints a job's stdout and stderr as node agents shipped them to the LOGS stream, in order, each
line prefixed "<subtask>.<attempt> <stdout|stderr>|" (--json: one object per message, as
GET /v1/jobs/{id}/logs sends them). --follow keeps reading (until Ctrl-C, or the attempt's end
when --subtask and --attempt are given). Reads any tenant's logs: this is an operator's tool.`,
  replay: `Usage: npm run events -- replay <projection> [options]
Delegates to the replay tool (libs/replay): rebuild a projection into fresh tables, diff against
the live ones, swap on request, resume after a crash. "replay --list" shows the projections.`,
};

const common = { help: { type: 'boolean', short: 'h' }, json: { type: 'boolean' } } as const;

type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;
type Parsed = { values: Record<string, string | boolean | undefined>; positionals: string[] };

function parse(args: string[], options: OptionSpec): Parsed {
  try {
    const { values, positionals } = parseArgs({ args, options: { ...common, ...options }, allowPositionals: true, strict: true });
    return { values: values, positionals };
  } catch (error) {
    throw new CliError(`${(error as Error).message} (see --help)`, 2);
  }
}

function positiveInt(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 1 || !Number.isSafeInteger(Number(value))) throw new CliError(`${name} must be a positive integer, got "${value}"`, 2);
  return Number(value);
}

function validId(value: string | undefined, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (!idSchema.safeParse(value).success) throw new CliError(`${name} "${value}" is not an id (letters, digits, "-" and "_")`, 2);
  return value;
}

/** Runs one CLI invocation; returns the exit code. Errors that users cause print one line and exit 1-3. */
export async function runEventsCli(argv: string[], ctx: CliContext): Promise<number> {
  try {
    return await dispatch(argv, ctx);
  } catch (error) {
    if (error instanceof CliError) {
      ctx.io.err(`error: ${error.message}`);
      return error.exitCode;
    }
    throw error;
  }
}

async function dispatch(argv: string[], ctx: CliContext): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    ctx.io.out(HELP[rest[0] ?? 'main'] ?? HELP.main!);
    return 0;
  }
  if ((rest.includes('--help') || rest.includes('-h')) && command !== 'replay') {
    ctx.io.out(HELP[command] ?? HELP.main!);
    return HELP[command] ? 0 : 2;
  }
  switch (command) {
    case 'tail':
      return tail(rest, ctx);
    case 'show':
      return show(rest, ctx);
    case 'as-of':
      return asOf(rest, ctx);
    case 'dlq':
      return dlq(rest, ctx);
    case 'replay':
      return runReplay(rest, ctx);
    case 'logs':
      return logs(rest, ctx);
    default:
      throw new CliError(`unknown command "${command}" (commands: tail, show, as-of, dlq, replay, logs; see --help)`, 2);
  }
}

// ------------------------------------------------------------------ tail
async function tail(args: string[], { bus, io, signal }: CliContext): Promise<number> {
  const { values } = parse(args, { tenant: { type: 'string' }, job: { type: 'string' }, node: { type: 'string' }, type: { type: 'string' }, from: { type: 'string' }, last: { type: 'string' }, 'no-follow': { type: 'boolean' } });
  const types = values.type ? new Set(String(values.type).split(',').map((t) => t.trim())) : undefined;
  for (const t of types ?? []) if (!(eventTypes as string[]).includes(t)) throw new CliError(`unknown event type "${t}" (known: ${eventTypes.join(', ')})`, 2);
  const filter: EventFilter = { tenant: validId(values.tenant as string | undefined, '--tenant'), job: validId(values.job as string | undefined, '--job'), node: validId(values.node as string | undefined, '--node'), types };
  const stream = bus.topology.streams.events;
  const bounds = await streamBounds(bus, stream);
  const from = positiveInt(values.from as string | undefined, '--from');
  const last = positiveInt(values.last as string | undefined, '--last');
  if (from !== undefined && from > bounds.last + 1) throw new CliError(`--from ${from} is beyond the end of the log (last sequence ${bounds.last})`, 2);
  const start = from ?? (last !== undefined ? Math.max(1, bounds.last - last + 1) : bounds.last + 1);
  const follow = !values['no-follow'];
  await readLog(bus, {
    stream,
    fromSequence: start,
    follow,
    signal,
    onMessage: (m) => {
      const decoded = decodeMessage(m);
      if (matches(decoded, filter)) io.out(values.json ? eventJson(decoded) : formatEvent(decoded, bus.topology.prefix));
    },
  });
  return 0;
}

// ------------------------------------------------------------------ logs
async function logs(args: string[], { bus, io, signal }: CliContext): Promise<number> {
  const { values, positionals } = parse(args, { subtask: { type: 'string' }, attempt: { type: 'string' }, follow: { type: 'boolean' } });
  const jobId = validId(positionals[0], 'job id');
  if (!jobId) throw new CliError('logs needs a job id (see logs --help)', 2);
  const subtask = values.subtask === undefined ? undefined : String(values.subtask);
  if (subtask !== undefined && !/^(0|[1-9][0-9]{0,8})$/.test(subtask)) throw new CliError(`--subtask must be a sub-task index, got "${subtask}"`, 2);
  const attempt = positiveInt(values.attempt as string | undefined, '--attempt');
  const stream = bus.topology.streams.logs;
  const filterSubject = `${bus.topology.prefix}.logs.*.${jobId}.${subtask ?? '*'}.${attempt ?? '*'}`;
  const follow = values.follow === true;
  if (!follow) {
    const info = await bus.jsm.streams.info(stream, { subjects_filter: filterSubject }).catch((error: Error) => {
      throw /not found/i.test(error.message) ? new CliError(`stream ${stream} does not exist`) : error;
    });
    if (Object.keys(info.state.subjects ?? {}).length === 0) throw new CliError(`no logs of job ${jobId}${subtask !== undefined ? ` sub-task ${subtask}` : ''}${attempt !== undefined ? ` attempt ${attempt}` : ''} in ${stream}`, 2);
  }
  const oneAttempt = subtask !== undefined && attempt !== undefined;
  await readLog(bus, {
    stream,
    filterSubject,
    follow,
    signal,
    onMessage: (m) => {
      const event = logEventOf({ seq: m.seq, subject: m.subject, data: m.data, kind: m.headers?.get(LogHeader.kind) || undefined, offset: m.headers?.get(LogHeader.offset) || undefined });
      if (!event) return;
      if (values.json) io.out(JSON.stringify({ id: event.sequence, subtask: event.subtaskIndex, attempt: event.attempt, kind: event.kind, offset: event.offset, text: event.text }));
      else if (event.kind === 'stdout' || event.kind === 'stderr') for (const line of event.text.replace(/\n$/, '').split('\n')) io.out(`${event.subtaskIndex}.${event.attempt} ${event.kind}| ${line}`);
      else io.out(`${event.subtaskIndex}.${event.attempt} ${event.kind === 'end' ? '(end of attempt)' : '(output truncated at the attempt\'s limit)'}`);
      if (follow && oneAttempt && event.kind === 'end') return false;
    },
  });
  return 0;
}

// ------------------------------------------------------------------ show
function subjectOf(arg: string, prefix: string): string {
  if (arg.startsWith(`${prefix}.`)) return arg;
  return `${prefix}.evt.${arg}`;
}

async function show(args: string[], { bus, io }: CliContext): Promise<number> {
  const { values, positionals } = parse(args, {});
  const target = positionals[0];
  if (!target) throw new CliError('show needs a subject or an id (see show --help)', 2);
  const prefix = bus.topology.prefix;
  const stream = bus.topology.streams.events;
  const filterSubject = target.includes('.') ? subjectOf(target, prefix) : `${prefix}.evt.*.*.${validId(target, 'id')}`;
  if (/[\s]/.test(filterSubject)) throw new CliError(`"${target}" is not a subject`, 2);
  const info = await bus.jsm.streams.info(stream, { subjects_filter: filterSubject }).catch((error: Error) => {
    throw /not found/i.test(error.message) ? new CliError(`stream ${stream} does not exist`) : error;
  });
  const subjects = Object.keys(info.state.subjects ?? {});
  if (subjects.length === 0) throw new CliError(`no events on ${stripPrefix(filterSubject, prefix)} in ${stream} (last sequence ${info.state.last_seq})`, 2);
  if (!values.json) io.out(`${subjects.map((s) => stripPrefix(s, prefix)).sort().join(', ')}: ${Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0)} event(s)`);
  await readLog(bus, { stream, filterSubject, onMessage: (m) => io.out(values.json ? eventJson(decodeMessage(m)) : formatEvent(decodeMessage(m), prefix)) });
  return 0;
}

// ------------------------------------------------------------------ as-of
/** The last stream sequence stored at or before `time` (0 when the log starts later). */
async function sequenceAt(bus: Bus, time: Date): Promise<number> {
  const stream = bus.topology.streams.events;
  const bounds = await streamBounds(bus, stream);
  if (bounds.messages === 0) return 0;
  const lastMessage = await bus.jsm.streams.getMessage(stream, { seq: bounds.last });
  if (lastMessage && lastMessage.time.getTime() <= time.getTime()) return bounds.last;
  const consumer = await bus.js.consumers.get(stream, { deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(time.getTime() + 1).toISOString() });
  const first = await consumer.next({ expires: 2000 });
  await consumer.delete().catch(() => undefined);
  return first ? first.seq - 1 : bounds.last;
}

async function asOf(args: string[], { bus, io }: CliContext): Promise<number> {
  const { values, positionals } = parse(args, { job: { type: 'string' }, node: { type: 'string' }, tenant: { type: 'string' } });
  const point = positionals[0];
  if (!point) throw new CliError('as-of needs a stream sequence or an ISO time (see as-of --help)', 2);
  const chosen = (['job', 'node', 'tenant'] as const).filter((k) => values[k] !== undefined);
  if (chosen.length !== 1) throw new CliError('as-of needs exactly one of --job, --node, --tenant', 2);
  const kind = chosen[0]!;
  const id = validId(values[kind] as string, `--${kind}`)!;
  const stream = bus.topology.streams.events;
  const bounds = await streamBounds(bus, stream);
  let sequence: number;
  if (/^\d+$/.test(point)) {
    sequence = Number(point);
    if (sequence < 1 || sequence > bounds.last) throw new CliError(`sequence ${point} is not in the log: ${stream} holds sequences 1..${bounds.last}`, 2);
  } else {
    const time = new Date(point);
    if (Number.isNaN(time.getTime()) || !/^\d{4}-\d{2}-\d{2}/.test(point)) throw new CliError(`"${point}" is neither a stream sequence nor an ISO-8601 time`, 2);
    sequence = await sequenceAt(bus, time);
  }
  const topo = bus.topology;
  const filterSubject = kind === 'node' ? `${topo.prefix}.evt.*.node.${id}` : kind === 'tenant' ? topo.subjects.usage(id) : undefined;
  const events: StoredEvent[] = [];
  if (sequence > 0) {
    await readLog(bus, {
      stream,
      toSequence: sequence,
      filterSubject,
      onMessage: (m) => {
        const decoded = decodeMessage(m);
        if (decoded.ok) events.push(decoded.stored);
      },
    });
  }
  const state = kind === 'job' ? foldJob(id, events) : kind === 'node' ? foldNode(id, events) : foldTenantUsage(id, events);
  if (values.json) {
    io.out(JSON.stringify({ asOfSequence: sequence, [kind]: state }));
    return 0;
  }
  io.out(`as of sequence ${sequence} (log ends at ${bounds.last}):`);
  io.out(JSON.stringify(state, null, 2));
  return 0;
}

// ------------------------------------------------------------------ dlq
function describeLetter(l: DeadLetter): string {
  return `#${l.sequence} ${l.storedAt} consumer=${l.consumer} count=${l.count} deliveries=${l.deliveries} ${l.originalStream}#${l.originalSequence} ${l.originalSubject} type=${l.eventType ?? '?'} reason=${JSON.stringify(l.reason)}`;
}

async function dlq(args: string[], { bus, io }: CliContext): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'list': {
      const { values } = parse(rest, { consumer: { type: 'string' } });
      const letters = await listDeadLetters(bus, { consumer: values.consumer as string | undefined });
      if (values.json) for (const l of letters) io.out(JSON.stringify({ ...l, data: new TextDecoder().decode(l.data) }));
      else {
        io.out(`${letters.length} dead letter(s) in ${bus.topology.streams.deadLetters}`);
        for (const l of letters) io.out(describeLetter(l));
      }
      return 0;
    }
    case 'show': {
      const { values, positionals } = parse(rest, {});
      const letter = await getDeadLetter(bus, positiveInt(positionals[0], 'dead-letter sequence') ?? NaN);
      const body = new TextDecoder().decode(letter.data);
      if (values.json) {
        io.out(JSON.stringify({ ...letter, data: body }));
        return 0;
      }
      io.out(describeLetter(letter));
      io.out('headers:');
      for (const [key, list] of Object.entries(letter.headers)) for (const value of list) io.out(`  ${key}: ${value}`);
      io.out('body:');
      try {
        io.out(JSON.stringify(JSON.parse(body), null, 2));
      } catch {
        io.out(body);
      }
      return 0;
    }
    case 'redrive': {
      const { values, positionals } = parse(rest, { all: { type: 'boolean' }, consumer: { type: 'string' }, force: { type: 'boolean' } });
      const consumer = values.consumer as string | undefined;
      if (values.all) {
        const groups = groupByOriginal(await listDeadLetters(bus, { consumer }));
        let failures = 0;
        for (const [letter, ...siblings] of groups) {
          try {
            const result = await redrive(bus, letter!, { force: Boolean(values.force), siblings });
            io.out(`redrove #${result.deadLetter} (${result.consumer}) to ${result.republishedTo} as #${result.sequence}${result.alsoRemoved.length ? `; removed copies ${result.alsoRemoved.map((s) => `#${s}`).join(', ')}` : ''}`);
          } catch (error) {
            if (!(error instanceof CliError)) throw error;
            failures++;
            io.err(`skipped: ${error.message}`);
          }
        }
        io.out(`${groups.length - failures} redriven, ${failures} refused`);
        return failures ? 3 : 0;
      }
      const sequence = positiveInt(positionals[0], 'dead-letter sequence');
      if (sequence === undefined) throw new CliError('redrive needs a dead-letter sequence or --all (see dlq --help)', 2);
      const letter = await getDeadLetter(bus, sequence);
      const siblings = await deadLetterSiblings(bus, letter);
      const result = await redrive(bus, letter, { force: Boolean(values.force), siblings });
      io.out(`redrove #${result.deadLetter} (${result.consumer}, dead-lettered ${letter.count} time(s)) to ${result.republishedTo} as #${result.sequence}${result.alsoRemoved.length ? `; removed copies ${result.alsoRemoved.map((s) => `#${s}`).join(', ')}` : ''}`);
      io.out('if its cause is not fixed it will fail again and return to the dead letters with its count grown');
      return 0;
    }
    case 'purge': {
      const { values } = parse(rest, { consumer: { type: 'string' }, yes: { type: 'boolean', short: 'y' } });
      const consumer = values.consumer as string | undefined;
      const count = await countDeadLetters(bus, { consumer });
      if (count === 0) {
        io.out('no dead letters to purge');
        return 0;
      }
      if (!values.yes) {
        if (!io.confirm) throw new CliError(`refusing to purge ${count} dead letter(s) without confirmation: pass --yes`, 2);
        const confirmed = await io.confirm(`Purge ${count} dead letter(s)${consumer ? ` of ${consumer}` : ''}? This cannot be undone. [y/N] `);
        if (!confirmed) {
          io.out('purge cancelled, nothing changed');
          return 1;
        }
      }
      const purged = await purgeDeadLetters(bus, { consumer });
      io.out(`purged ${purged} dead letter(s)`);
      return 0;
    }
    default:
      if (sub === undefined || sub === '--help' || sub === '-h') {
        io.out(HELP.dlq!);
        return sub ? 0 : 2;
      }
      throw new CliError(`unknown dlq command "${sub}" (list, show, redrive, purge)`, 2);
  }
}
