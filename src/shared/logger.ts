/**
 * Diagnostic logger: leveled, one line per event on stderr (stdout carries the access log).
 * The level can be changed at run time (admin `/logging?level=`). Cheap when a level is off:
 * callers may guard expensive messages with `logger.enabled('debug')`.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'off';

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, off: 100 };

export function isLogLevel(s: string): s is LogLevel {
  return s in ORDER;
}

/** Diagnostic bytes a stuck stderr reader may hold before lines are dropped (never block, never grow). */
const MAX_PENDING_BYTES = 1024 * 1024;

export class Logger {
  private threshold: number;
  private lvl: LogLevel;
  /** Lines not written because stderr was stuck or gone. */
  dropped = 0;

  constructor(level: LogLevel = 'info', private readonly out: { write(s: string): unknown; writableLength?: number; destroyed?: boolean } = process.stderr) {
    this.lvl = level;
    this.threshold = ORDER[level];
  }

  get level(): LogLevel {
    return this.lvl;
  }

  setLevel(level: LogLevel): void {
    this.lvl = level;
    this.threshold = ORDER[level];
  }

  enabled(level: Exclude<LogLevel, 'off'>): boolean {
    return ORDER[level] >= this.threshold;
  }

  debug(msg: string, fields?: Record<string, unknown>): void {
    if (ORDER.debug >= this.threshold) this.write('debug', msg, fields);
  }
  info(msg: string, fields?: Record<string, unknown>): void {
    if (ORDER.info >= this.threshold) this.write('info', msg, fields);
  }
  warn(msg: string, fields?: Record<string, unknown>): void {
    if (ORDER.warn >= this.threshold) this.write('warn', msg, fields);
  }
  error(msg: string, fields?: Record<string, unknown>): void {
    if (ORDER.error >= this.threshold) this.write('error', msg, fields);
  }

  private write(level: string, msg: string, fields: Record<string, unknown> | undefined): void {
    if (this.out.destroyed === true || (this.out.writableLength ?? 0) > MAX_PENDING_BYTES) {
      this.dropped++;
      return;
    }
    const extra = fields ? ' ' + JSON.stringify(fields) : '';
    this.out.write(`${new Date().toISOString()} ${level} ${msg}${extra}\n`);
  }
}
