/**
 * A runner's metrics (see `RemoteMetrics.ts`), kept as plain fields that the
 * runner updates where it already counts, and read only when the metrics
 * are read (see `../metrics.ts`).
 */
import type { Context, Metric } from "effect"
import * as RemoteMetrics from "../../RemoteMetrics.ts"
import { attach } from "../metrics.ts"

/**
 * The metrics of one runner. It counts from the start; its series are
 * registered once it knows where it listens (`start`), and taken out when
 * it stops (`close`).
 */
export class RunnerMeter {
  /** Connections open, from their accept. */
  open = 0
  /** Requests received and not yet answered. */
  inFlight = 0
  private readonly refusals = new Map<string, number>()
  private readonly outcomes = new Map<string, number>()
  private readonly detachers: Array<() => void> = []
  private readonly context: Context.Context<never>
  /** Where the runner listens (`host:port`), once it does; `null` once it stopped. */
  private runner: string | undefined | null = undefined

  constructor(context: Context.Context<never>) {
    this.context = context
  }

  private series(metric: Metric.Metric<any, any>, attributes: Record<string, string>, source: () => number) {
    if (typeof this.runner !== "string") return
    this.detachers.push(attach(this.context, metric, { runner: this.runner, ...attributes }, source))
  }

  /** Registers the series of the runner listening at `runner`. */
  start(runner: string): void {
    if (this.runner !== undefined) return
    this.runner = runner
    this.series(RemoteMetrics.connections, {}, () => this.open)
    this.series(RemoteMetrics.inFlight, {}, () => this.inFlight)
    for (const reason of this.refusals.keys())
      this.series(RemoteMetrics.refusals, { reason }, () => this.refusals.get(reason)!)
    for (const outcome of this.outcomes.keys()) {
      this.series(RemoteMetrics.requests, { outcome }, () => this.outcomes.get(outcome)!)
    }
  }

  private count(counts: Map<string, number>, metric: typeof RemoteMetrics.requests, key: string, value: string) {
    const count = counts.get(value)
    if (count !== undefined) {
      counts.set(value, count + 1)
      return
    }
    counts.set(value, 1)
    this.series(metric, { [key]: value }, () => counts.get(value)!)
  }

  /** A connection was refused, or closed for cause. */
  refused(reason: RemoteMetrics.RefusalReason): void {
    this.count(this.refusals, RemoteMetrics.refusals, "reason", reason)
  }

  /** A request ended with `outcome`. */
  answered(outcome: RemoteMetrics.RequestOutcome): void {
    this.count(this.outcomes, RemoteMetrics.requests, "outcome", outcome)
  }

  /** Takes the runner's series out (it stopped): its counts stay in the counters. */
  close(): void {
    this.runner = null
    for (const detach of this.detachers) detach()
    this.detachers.length = 0
  }
}
