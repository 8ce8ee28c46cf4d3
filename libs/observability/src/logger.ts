import type { LoggerService } from '@nestjs/common';
import { trace } from '@opentelemetry/api';

/**
 * Structured JSON logs, one object per line, carrying the active trace and span ids so a log
 * line leads to its trace in Jaeger. Writes go to a sink (stdout by default; tests capture).
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const levelRank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LogRecord {
  time: string;
  level: LogLevel;
  service: string;
  msg: string;
  trace_id?: string;
  span_id?: string;
  [field: string]: unknown;
}

export type LogSink = (line: string) => void;
const stdoutSink: LogSink = (line) => process.stdout.write(`${line}\n`);

export class JsonLogger {
  constructor(
    readonly service: string,
    private readonly options: { level?: LogLevel; sink?: LogSink; fields?: Record<string, unknown> } = {},
  ) {}

  child(fields: Record<string, unknown>): JsonLogger {
    return new JsonLogger(this.service, { ...this.options, fields: { ...this.options.fields, ...fields } });
  }

  debug(msg: string, fields?: Record<string, unknown>): void {
    this.write('debug', msg, fields);
  }
  info(msg: string, fields?: Record<string, unknown>): void {
    this.write('info', msg, fields);
  }
  warn(msg: string, fields?: Record<string, unknown>): void {
    this.write('warn', msg, fields);
  }
  error(msg: string, fields?: Record<string, unknown>): void {
    this.write('error', msg, fields);
  }

  write(level: LogLevel, msg: string, fields: Record<string, unknown> = {}): void {
    if (levelRank[level] < levelRank[this.options.level ?? 'info']) return;
    const record: LogRecord = { time: new Date().toISOString(), level, service: this.service, msg, ...this.options.fields, ...fields };
    const spanContext = trace.getActiveSpan()?.spanContext();
    if (spanContext && spanContext.traceId !== '00000000000000000000000000000000') {
      record.trace_id = spanContext.traceId;
      record.span_id = spanContext.spanId;
    }
    (this.options.sink ?? stdoutSink)(safeStringify(record));
  }
}

function safeStringify(record: LogRecord): string {
  try {
    return JSON.stringify(record, (_key, value: unknown) => (value instanceof Error ? { name: value.name, message: value.message, stack: value.stack } : typeof value === 'bigint' ? value.toString() : value));
  } catch {
    return JSON.stringify({ time: record.time, level: record.level, service: record.service, msg: record.msg, trace_id: record.trace_id, span_id: record.span_id });
  }
}

/** Nest's logger interface over JsonLogger: `NestFactory.create(module, adapter, { logger: new NestJsonLogger('intake') })`. */
export class NestJsonLogger implements LoggerService {
  private readonly logger: JsonLogger;
  constructor(service: string, options: { level?: LogLevel; sink?: LogSink } = {}) {
    this.logger = new JsonLogger(service, options);
  }
  log(message: unknown, ...rest: unknown[]): void {
    this.logger.info(String(message), contextOf(rest));
  }
  error(message: unknown, ...rest: unknown[]): void {
    const [stack, ...others] = rest;
    this.logger.error(String(message), { ...contextOf(others), ...(typeof stack === 'string' && stack.includes('\n') ? { stack } : contextOf(rest)) });
  }
  warn(message: unknown, ...rest: unknown[]): void {
    this.logger.warn(String(message), contextOf(rest));
  }
  debug(message: unknown, ...rest: unknown[]): void {
    this.logger.debug(String(message), contextOf(rest));
  }
  verbose(message: unknown, ...rest: unknown[]): void {
    this.logger.debug(String(message), contextOf(rest));
  }
}

function contextOf(rest: unknown[]): Record<string, unknown> {
  const last = rest[rest.length - 1];
  return typeof last === 'string' ? { context: last } : {};
}
