/**
 * The options Schemas: decoded from nothing, each gives the defaults the
 * docs state (the tables of `WorkerPool.Options`, `EjectionOptions`,
 * `RetryOptions`, `MetricsOptions` and `Worker.WorkerOptions`).
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Result } from "effect"
import { InvalidOptions, Worker, WorkerId, WorkerKind, WorkerPool } from "effect-worker-pool"
import * as Rules from "../src/internal/options.ts"
import { PoolOptions } from "../src/internal/pool/options.ts"
import { WorkerOptions } from "../src/internal/workerOptions.ts"

/** `input` decoded by `schema`; the test fails if it is invalid. */
const decoded = <A>(schema: Rules.Rule<A>, input: unknown): A => {
  const result = Rules.decodeResult(schema)(input)
  if (Result.isFailure(result)) assert.fail(result.failure.reason)
  return result.success
}

/** The reason `input` is invalid under `schema`; the test fails if it is valid. */
const reasonOf = (schema: Rules.Rule<unknown>, input: unknown): string => {
  const result = Rules.decodeResult(schema)(input)
  if (Result.isSuccess(result)) return assert.fail(`valid: ${JSON.stringify(input)}`)
  assert.instanceOf(result.failure, InvalidOptions)
  return result.failure.reason
}

/** `actual` is the duration the docs write as `documented`. */
const assertDuration = (actual: Duration.Duration | undefined, documented: Duration.Input) => {
  assert.isDefined(actual)
  assert.isTrue(
    Duration.equals(actual!, Duration.fromInputUnsafe(documented)),
    `${Duration.format(actual!)} is not ${String(documented)}`
  )
}

const millis = (documented: Duration.Input) => Duration.toMillis(Duration.fromInputUnsafe(documented))

describe("options: the defaults the docs state", () => {
  it("WorkerPool.Options, EjectionOptions, RetryOptions, MetricsOptions", () => {
    const pool = decoded(PoolOptions, {})
    assert.strictEqual(pool.policy.name, "ShortestExpectedDelay")
    assert.isUndefined(pool.workers, "size, worker: none, the pool starts empty")
    assert.isUndefined(pool.timeout)
    assert.strictEqual(pool.queueTimeoutMillis, millis("30 seconds"))
    assert.strictEqual(pool.queueCapacity, 1024)
    assert.strictEqual(pool.queueStrategy, "suspend")
    assertDuration(pool.drain, "10 seconds")
    assert.strictEqual(pool.spares, 1)
    assert.strictEqual(pool.name, "default")
    assert.strictEqual(pool.workerIdMetrics, false)
    // ejection: on
    assert.isDefined(pool.ejection)
    assert.strictEqual(pool.ejection!.consecutiveFailures, 5)
    assert.strictEqual(pool.ejection!.baseMillis, millis("30 seconds"))
    assert.strictEqual(pool.ejection!.maxMillis, millis("5 minutes"))
    assert.strictEqual(pool.ejection!.maxEjectedShare, 0.1)
    assert.strictEqual(pool.ejection!.panicThreshold, 0.5)
    // retry
    assert.strictEqual(pool.retry.maxRetries, 1)
    assert.strictEqual(pool.retry.share, 0.2)
    assert.strictEqual(pool.retry.minPerWindow, 10)
    assert.strictEqual(pool.retry.windowMillis, millis("10 seconds"))
  })

  it("WorkerPool.Options: ejection false turns it off; a nested object keeps the defaults of what it leaves out", () => {
    assert.isUndefined(decoded(PoolOptions, { ejection: false }).ejection)
    const pool = decoded(PoolOptions, { ejection: { consecutiveFailures: 3 }, retry: { share: 0.5 } })
    assert.deepStrictEqual(pool.ejection, {
      consecutiveFailures: 3,
      baseMillis: 30_000,
      maxMillis: 300_000,
      maxEjectedShare: 0.1,
      panicThreshold: 0.5
    })
    assert.deepStrictEqual(pool.retry, { maxRetries: 1, share: 0.5, minPerWindow: 10, windowMillis: 10_000 })
  })

  it("WorkerPool.Options: each pool gets a default policy of its own", () => {
    assert.notStrictEqual(decoded(PoolOptions, {}).policy, decoded(PoolOptions, {}).policy)
  })

  it("Worker.WorkerOptions", () => {
    const worker = decoded(WorkerOptions(), undefined)
    assert.strictEqual(worker.restart.schedule, Worker.defaultRestartSchedule)
    assert.strictEqual(worker.restart.maxRestarts, Infinity)
    assertDuration(worker.restart.window, "1 minute")
    assertDuration(worker.restart.resetAfter, "30 seconds")
    assert.strictEqual(worker.maxInFlight, 1, "maxInFlight: 1 when the kind has no concurrency")
    assert.strictEqual(decoded(WorkerOptions(4), {}).maxInFlight, 4, "maxInFlight: the kind's concurrency")
  })

  it.effect("Worker.fromKind: maxInFlight defaults to the kind's concurrency, else 1", () =>
    Effect.gen(function* () {
      const handler = (n: number) => Effect.succeed(n)
      const plain = yield* Worker.fromKind(WorkerId.make(0), WorkerKind.inProcess(handler))
      assert.strictEqual(plain.maxInFlight, 1)
      const wide = yield* Worker.fromKind(WorkerId.make(1), { ...WorkerKind.inProcess(handler), concurrency: 3 })
      assert.strictEqual(wide.maxInFlight, 3)
    }).pipe(Effect.scoped)
  )
})

describe("options: reasons", () => {
  it("a nested option's reason is its rule's own words, without the struct's path", () => {
    assert.strictEqual(
      reasonOf(PoolOptions, { ejection: { consecutiveFailures: 0 } }),
      "ejection.consecutiveFailures must be a positive integer, got 0"
    )
  })

  it("an options object, or a nested one, that is not an object says so", () => {
    assert.strictEqual(reasonOf(PoolOptions, null), "options must be an object, got null")
    assert.strictEqual(reasonOf(PoolOptions, { ejection: true }), "ejection must be false or an object, got true")
    assert.strictEqual(reasonOf(PoolOptions, { retry: 3 }), "retry must be an object, got 3")
  })

  it("the first option to fail is reported, in the order of the options", () => {
    assert.strictEqual(
      reasonOf(PoolOptions, { queueCapacity: -1, spares: -1 }),
      "queueCapacity must be a non-negative integer, got -1"
    )
  })

  it.effect("WorkerPool.make fails with the reason", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(WorkerPool.make({ retry: { window: "soon" as Duration.Input } }))
      assert.deepStrictEqual(
        error,
        new InvalidOptions({ reason: "retry.window must be a non-negative duration, got soon" })
      )
    }).pipe(Effect.scoped)
  )
})
