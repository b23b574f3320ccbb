/**
 * The pool's metrics (see `PoolMetrics.ts`), kept as plain fields that the
 * engine updates in place where it already counts, and read only when the
 * metrics are read: each series is registered once per metric registry with
 * `Metric.registerUnsafe`, and its value is the sum of its sources (one per
 * pool or worker that reports to it). A source that leaves (a worker
 * removed, a pool closed) leaves its counts behind in its counters and
 * histograms, so that they never go down.
 */
import { Context, Metric } from "effect"
import * as PoolMetrics from "../PoolMetrics.ts"
import type { WorkerState } from "../WorkerHealth.ts"
import type { HealthRecord } from "./health.ts"
import { recycleReasons } from "./recycle.ts"

const bounds = PoolMetrics.boundaries

/** A histogram of milliseconds over `PoolMetrics.boundaries`, updated in place. */
export class Histogram {
  /** Per bucket (the last one: above every boundary). */
  readonly counts = new Uint32Array(bounds.length + 1)
  count = 0
  sum = 0
  min = Number.MAX_VALUE
  max = -Number.MAX_VALUE
  /** Values of 0, counted apart: the common case of a request that did not wait. */
  zeros = 0

  observe(value: number): void {
    if (value <= 0) {
      this.zeros++
      return
    }
    let i = 1
    while (i < bounds.length && value > bounds[i]!) i++
    this.counts[i]!++
    this.count++
    this.sum += value
    if (value < this.min) this.min = value
    if (value > this.max) this.max = value
  }

  /** Adds `other`'s observations to this one. */
  add(other: Histogram): void {
    for (let i = 0; i < this.counts.length; i++) this.counts[i]! += other.counts[i]!
    this.count += other.count
    this.sum += other.sum
    this.zeros += other.zeros
    if (other.min < this.min) this.min = other.min
    if (other.max > this.max) this.max = other.max
  }
}

const histogramState = (histograms: Iterable<Histogram>): Metric.HistogramState => {
  const total = new Histogram()
  for (const histogram of histograms) total.add(histogram)
  const buckets: Array<[number, number]> = []
  let cumulated = total.zeros
  for (let i = 0; i < bounds.length; i++) {
    cumulated += total.counts[i]!
    buckets.push([bounds[i]!, cumulated])
  }
  return {
    buckets,
    count: total.count + total.zeros,
    sum: total.sum,
    min: total.zeros > 0 ? Math.min(0, total.min) : total.min,
    max: total.zeros > 0 ? Math.max(0, total.max) : total.max
  }
}

export type Source = (() => number) | (() => Histogram)

/** One series: a metric with its attributes, and what reports to it. */
interface Series {
  readonly type: Metric.Metric.Type
  readonly sources: Set<Source>
  /** What sources that left had counted (counters, histograms). */
  departedCount: number
  readonly departed: Histogram
}

const registries = new WeakMap<Metric.MetricRegistry, Map<string, Series>>()

const seriesState = (series: Series): unknown => {
  switch (series.type) {
    case "Histogram":
      return histogramState([series.departed, ...Array.from(series.sources, (source) => source() as Histogram)])
    case "Counter": {
      let count = series.departedCount
      for (const source of series.sources) count += source() as number
      return { count, incremental: true }
    }
    default: {
      let value = 0
      for (const source of series.sources) value += source() as number
      return { value }
    }
  }
}

/**
 * Registers a new series of `metric` with `attributes` in the context's
 * registry. Its hooks see the series alone: a registry keeps them for ever,
 * so they must hold nothing of the pool or the worker that reports to it
 * (a closure made beside a source would keep that source, and its pool).
 */
const register = (
  metric: Metric.Metric<any, any>,
  attributes: Metric.Metric.AttributeSet,
  context: Context.Context<never>
): Series => {
  const created: Series = { type: metric.type, sources: new Set(), departedCount: 0, departed: new Histogram() }
  Metric.registerUnsafe(Metric.withAttributes(metric, attributes), context, hooksOf(created))
  return created
}

const ignore = () => {}

const hooksOf = (series: Series) => ({ get: () => seriesState(series), update: ignore, modify: ignore })

/**
 * Makes `source` report to the series of `metric` with `attributes` (and the
 * context's current metric attributes) in the context's registry; returns
 * how to take it out again.
 */
export const attach = (
  context: Context.Context<never>,
  metric: Metric.Metric<any, any>,
  attributes: Metric.Metric.AttributeSet,
  source: Source
): (() => void) => {
  const registry = Context.get(context, Metric.MetricRegistry)
  let all = registries.get(registry)
  if (all === undefined) {
    all = new Map()
    registries.set(registry, all)
  }
  const merged = { ...Context.get(context, Metric.CurrentMetricAttributes), ...attributes }
  const key = JSON.stringify([metric.id, Object.entries(merged).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))])
  let series = all.get(key)
  if (series === undefined) {
    series = register(metric, attributes, context)
    all.set(key, series)
  }
  const joined = series
  joined.sources.add(source)
  return () => {
    if (!joined.sources.delete(source)) return
    if (joined.type === "Counter") joined.departedCount += source() as number
    else if (joined.type === "Histogram") joined.departed.add(source() as Histogram)
  }
}

const states: ReadonlyArray<WorkerState> = ["Starting", "Healthy", "Ejected", "Restarting", "Retired", "Stopped"]

/** What the pool keeps of one worker for its metrics. */
export interface WorkerMetrics {
  readonly runTime: Histogram
  /** Takes the worker's series out (it left the pool). */
  readonly detach: () => void
}

/** The requests of one operation of a group: its successes, and the others by outcome. */
interface OperationCounts {
  successes: number
  readonly others: Map<string, number>
}

/** The metrics of one pool: its own counters, and its workers' series. */
export class PoolMeter {
  /** Requests that ended in success. */
  successes = 0
  /** Requests that ended otherwise, by outcome. */
  private readonly failures = new Map<string, number>()
  /** The requests of each operation of a group: its successes, and the others by outcome. */
  private readonly byOperation = new Map<string, OperationCounts>()
  private lastOperation: string | undefined = undefined
  private lastCounts: OperationCounts | undefined = undefined
  retries = 0
  readonly queueWait = new Histogram()
  private readonly detachers: Array<() => void> = []
  private readonly workers = new Set<WorkerMetrics>()
  private closed = false
  private readonly context: Context.Context<never>
  private readonly attributes: Metric.Metric.AttributeSet
  private readonly workerId: boolean

  constructor(
    context: Context.Context<never>,
    options: { readonly name: string; readonly policy: string; readonly workerId: boolean },
    queued: () => number
  ) {
    this.context = context
    this.attributes = { pool: options.name, policy: options.policy }
    this.workerId = options.workerId
    this.own(PoolMetrics.requests, { outcome: "Success" }, () => this.successes)
    this.own(PoolMetrics.retries, {}, () => this.retries)
    this.own(PoolMetrics.queueWait, {}, () => this.queueWait)
    this.own(PoolMetrics.queued, {}, queued)
  }

  /** Attaches the counts of an elastic pool's scale decisions, by direction. */
  scaling(ups: () => number, downs: () => number): void {
    this.own(PoolMetrics.scaling, { direction: "up" }, ups)
    this.own(PoolMetrics.scaling, { direction: "down" }, downs)
  }

  private own(metric: Metric.Metric<any, any>, attributes: Metric.Metric.AttributeSet, source: Source): void {
    this.detachers.push(attach(this.context, metric, { ...this.attributes, ...attributes }, source))
  }

  /**
   * Counts a request that ended with `outcome` (not a success, unless it
   * called an `operation` of a group: its series have an `operation`
   * attribute, one per operation and outcome).
   */
  failed(outcome: string, operation?: string): void {
    // A request refused by a pool that has shut down: its series are gone.
    if (this.closed) return
    if (operation === undefined) {
      this.count(this.failures, outcome, { outcome })
      return
    }
    // The last call's operation first (the same string, held by the plan: a quick comparison), else a lookup.
    let counts = operation === this.lastOperation ? this.lastCounts : this.byOperation.get(operation)
    if (counts === undefined) {
      counts = { successes: 0, others: new Map() }
      this.byOperation.set(operation, counts)
    }
    this.lastOperation = operation
    this.lastCounts = counts
    if (outcome !== "Success") {
      this.count(counts.others, outcome, { outcome, operation })
      return
    }
    // Its series from its first success on, as a failure's from the first of its outcome.
    if (counts.successes === 0) {
      const series = counts
      this.own(PoolMetrics.requests, { outcome, operation }, () => series.successes)
    }
    counts.successes++
  }

  /** Counts one more request of `outcome` in `counts`; the first one attaches its series, with `attributes`. */
  private count(counts: Map<string, number>, outcome: string, attributes: Metric.Metric.AttributeSet): void {
    const count = counts.get(outcome)
    if (count !== undefined) {
      counts.set(outcome, count + 1)
      return
    }
    counts.set(outcome, 1)
    this.own(PoolMetrics.requests, attributes, () => counts.get(outcome)!)
  }

  /** Attaches the series of a worker that joined the pool. */
  worker(id: number, kind: string, health: HealthRecord): WorkerMetrics {
    const attributes: Record<string, string> = { ...this.attributes, kind }
    if (this.workerId) attributes.worker_id = String(id)
    const runTime = new Histogram()
    const detachers = [
      attach(this.context, PoolMetrics.runTime, attributes, () => runTime),
      attach(this.context, PoolMetrics.inFlight, attributes, () => health.inFlight),
      attach(this.context, PoolMetrics.maxInFlight, attributes, () => health.maxInFlight),
      attach(this.context, PoolMetrics.crashes, attributes, () => health.crashes),
      attach(this.context, PoolMetrics.restarts, attributes, () => health.restarts),
      attach(this.context, PoolMetrics.ejections, attributes, () => health.ejections),
      // A worker that recycles has a series per reason.
      ...(health.recycledFor === undefined ? [] : recycleReasons).map((reason) =>
        attach(this.context, PoolMetrics.recycles, { ...attributes, reason }, () => health.recycledFor![reason])
      ),
      ...states.map((state) =>
        attach(this.context, PoolMetrics.workers, { ...attributes, state }, () => (health.state === state ? 1 : 0))
      )
    ]
    const metrics: WorkerMetrics = {
      runTime,
      detach: () => {
        if (!this.workers.delete(metrics)) return
        for (const detach of detachers) detach()
      }
    }
    this.workers.add(metrics)
    return metrics
  }

  /** Takes every series of the pool out (it shut down). */
  close(): void {
    this.closed = true
    for (const worker of [...this.workers]) worker.detach()
    for (const detach of this.detachers) detach()
    this.detachers.length = 0
  }
}
