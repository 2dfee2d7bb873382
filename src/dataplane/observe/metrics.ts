/**
 * A small Prometheus registry (text exposition format 0.0.4). Metric families are declared once;
 * label children are resolved once and kept by the caller (`counter.labels('a', 'b')` returns the
 * same child object for the same values), so the hot path is a map lookup at most, usually a field
 * increment.
 *
 * Series limit: a family holds at most `maxSeriesPerMetric` label combinations (`--max-metric-series`).
 * Past it, `labels()` with new values returns a detached child that is never rendered (the sample
 * is lost, not misattributed) and counts the refusal in tollgate_metric_series_refused_total{metric}.
 * Label values should be bounded by design (istio-metrics.ts collapses client-chosen hosts); the
 * limit is the backstop that keeps memory and scrapes bounded when one is not.
 */

/** Series per metric family before new label combinations are refused. */
export const DEFAULT_MAX_SERIES_PER_METRIC = 10_000;

export type LabelValues = readonly string[];

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labelText(names: readonly string[], values: LabelValues, extra?: string): string {
  if (names.length === 0 && extra === undefined) return '';
  const parts: string[] = [];
  for (let i = 0; i < names.length; i++) parts.push(`${names[i]}="${escapeLabel(values[i] ?? '')}"`);
  if (extra !== undefined) parts.push(extra);
  return `{${parts.join(',')}}`;
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/** Where a family reports refused series (set by the registry). */
interface SeriesLimit {
  readonly max: number;
  refused(family: string): void;
}

const UNLIMITED: SeriesLimit = { max: Infinity, refused: () => {} };

abstract class Family<C> {
  protected readonly children = new Map<string, { values: LabelValues; child: C }>();
  /** Receives the samples of refused series; never rendered. */
  private detached: C | undefined = undefined;
  limit: SeriesLimit = UNLIMITED;
  constructor(readonly name: string, readonly help: string, readonly labelNames: readonly string[]) {}

  protected abstract make(): C;

  labels(...values: string[]): C {
    const key = values.length === 1 ? values[0]! : values.join('\u0000');
    let e = this.children.get(key);
    if (e === undefined) {
      if (values.length !== this.labelNames.length) throw new Error(`${this.name}: expected ${this.labelNames.length} label values, got ${values.length}`);
      if (this.children.size >= this.limit.max) {
        this.limit.refused(this.name);
        return (this.detached ??= this.make());
      }
      e = { values: [...values], child: this.make() };
      this.children.set(key, e);
    }
    return e.child;
  }

  /** `child` came from a refused labels() call (callers that cache children must not keep it). */
  isDetached(child: C): boolean {
    return child === this.detached;
  }

  get seriesCount(): number {
    return this.children.size;
  }

  abstract render(out: string[]): void;
}

export class CounterChild {
  value = 0;
  inc(n = 1): void {
    this.value += n;
  }
}

export class Counter extends Family<CounterChild> {
  /** Optional callback run before rendering (for counters kept elsewhere, e.g. by the kernel). */
  collect?: () => void;
  protected make(): CounterChild {
    return new CounterChild();
  }
  /** Sum over all children with these label values at the given positions (tests, /clusters). */
  get(...values: string[]): number {
    return this.children.get(values.length === 1 ? values[0]! : values.join('\u0000'))?.child.value ?? 0;
  }
  render(out: string[]): void {
    this.collect?.();
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`);
    for (const { values, child } of this.children.values()) out.push(`${this.name}${labelText(this.labelNames, values)} ${formatValue(child.value)}`);
  }
}

export class GaugeChild {
  value = 0;
  set(v: number): void {
    this.value = v;
  }
  inc(n = 1): void {
    this.value += n;
  }
  dec(n = 1): void {
    this.value -= n;
  }
}

export class Gauge extends Family<GaugeChild> {
  /** Optional callback run before rendering (for gauges computed on demand). */
  collect?: () => void;
  protected make(): GaugeChild {
    return new GaugeChild();
  }
  get(...values: string[]): number {
    return this.children.get(values.length === 1 ? values[0]! : values.join('\u0000'))?.child.value ?? 0;
  }
  /** Sets every child to 0 (a state gauge about to be re-filled). */
  reset(): void {
    for (const e of this.children.values()) e.child.value = 0;
  }
  render(out: string[]): void {
    this.collect?.();
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`);
    for (const { values, child } of this.children.values()) out.push(`${this.name}${labelText(this.labelNames, values)} ${formatValue(child.value)}`);
  }
}

export class HistogramChild {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(private readonly buckets: readonly number[]) {
    this.counts = new Float64Array(buckets.length);
  }
  observe(v: number): void {
    this.sum += v;
    this.count++;
    const b = this.buckets;
    for (let i = 0; i < b.length; i++) {
      if (v <= b[i]!) {
        this.counts[i]!++;
        return;
      }
    }
  }
}

export class Histogram extends Family<HistogramChild> {
  constructor(name: string, help: string, labelNames: readonly string[], readonly buckets: readonly number[]) {
    super(name, help, labelNames);
  }
  protected make(): HistogramChild {
    return new HistogramChild(this.buckets);
  }
  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`);
    for (const { values, child } of this.children.values()) {
      let cum = 0;
      for (let i = 0; i < this.buckets.length; i++) {
        cum += child.counts[i]!;
        out.push(`${this.name}_bucket${labelText(this.labelNames, values, `le="${formatValue(this.buckets[i]!)}"`)} ${cum}`);
      }
      out.push(`${this.name}_bucket${labelText(this.labelNames, values, 'le="+Inf"')} ${child.count}`);
      out.push(`${this.name}_sum${labelText(this.labelNames, values)} ${formatValue(child.sum)}`);
      out.push(`${this.name}_count${labelText(this.labelNames, values)} ${child.count}`);
    }
  }
}

export class MetricsRegistry {
  private readonly families = new Map<string, Family<unknown>>();
  private readonly limit: SeriesLimit;

  constructor(opts: { readonly maxSeriesPerMetric?: number } = {}) {
    // One series per family at most: never limited itself.
    const refused = new Counter('tollgate_metric_series_refused_total', 'Samples not recorded because their label combination would have been a new series beyond --max-metric-series, by metric.', ['metric']);
    this.families.set(refused.name, refused);
    this.limit = { max: opts.maxSeriesPerMetric ?? DEFAULT_MAX_SERIES_PER_METRIC, refused: (family) => refused.labels(family).inc() };
  }

  private add<F extends Family<unknown>>(f: F): F {
    const existing = this.families.get(f.name);
    if (existing) {
      if (existing.constructor !== f.constructor) throw new Error(`metric ${f.name} registered twice with different types`);
      return existing as F;
    }
    f.limit = this.limit;
    this.families.set(f.name, f);
    return f;
  }

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.add(new Counter(name, help, labelNames));
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.add(new Gauge(name, help, labelNames));
  }

  histogram(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]): Histogram {
    return this.add(new Histogram(name, help, labelNames, buckets));
  }

  render(): string {
    const out: string[] = [];
    for (const f of this.families.values()) f.render(out);
    return out.join('\n') + '\n';
  }
}
