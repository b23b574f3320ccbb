/**
 * The options Schemas: decoded from nothing, each gives the defaults the
 * docs state (the tables of `WorkerPool.Options`, `EjectionOptions`,
 * `RetryOptions`, `MetricsOptions`, `Worker.WorkerOptions`,
 * `Subprocess.CommonOptions`, `Subprocess.Options`, `Thread.Options`,
 * `Remote.Options`, `Remote.ServeOptions` and `Remote.PoolOptions`), and
 * any value of any one option is either valid or an `InvalidOptions` that
 * names that option.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Result, Schema } from "effect"
import {
  DomainError,
  InvalidOptions,
  Protocol,
  Subprocess,
  Worker,
  WorkerId,
  WorkerKind,
  WorkerPool
} from "effect-worker-pool"
import { Remote } from "effect-worker-pool/remote"
import * as Rules from "../src/internal/options.ts"
import { PoolOptions } from "../src/internal/pool/options.ts"
import * as RemoteOptions from "../src/internal/remote/options.ts"
import { SubprocessOptions, ThreadOptions } from "../src/internal/settings.ts"
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

const schemas = { request: Schema.Number, response: Schema.Number }

describe("options: the defaults the docs state", () => {
  it("WorkerPool.Options, EjectionOptions, RetryOptions, MetricsOptions", () => {
    const pool = decoded(PoolOptions, {})
    assert.strictEqual(pool.policy.name, "ShortestExpectedDelay")
    assert.isUndefined(pool.workers, "size, worker: none, the pool starts empty")
    const make = () => Effect.die("unused")
    assert.isUndefined(decoded(PoolOptions, { size: 2, worker: make }).workers?.elastic, "a fixed size")
    assert.deepStrictEqual(
      decoded(PoolOptions, { size: { min: 1, max: 3 }, worker: make }).workers?.elastic,
      { min: 1, max: 3, idleTimeoutMillis: 30_000, targetUtilization: 1, utilizationWindowMillis: 1_000 },
      "idleTimeout: 30 seconds, targetUtilization: 1, utilizationWindow: 1 second"
    )
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
    const fixed = (max: number) => ({ max, adaptive: false })
    const adaptive = (max: number) => ({ max, adaptive: true })
    assert.deepStrictEqual(worker.maxInFlight, fixed(1), "maxInFlight: 1 when the kind has no concurrency")
    assert.deepStrictEqual(decoded(WorkerOptions(4), {}).maxInFlight, fixed(4), "maxInFlight: the kind's concurrency")
    assert.deepStrictEqual(decoded(WorkerOptions(undefined, true), {}).maxInFlight, adaptive(64), "in process")
    assert.deepStrictEqual(decoded(WorkerOptions(4), { maxInFlight: "adaptive" }).maxInFlight, adaptive(4))
    assert.deepStrictEqual(decoded(WorkerOptions(4), { maxInFlight: { adaptive: {} } }).maxInFlight, adaptive(4))
    assert.deepStrictEqual(
      decoded(WorkerOptions(4), { maxInFlight: { adaptive: { max: 2 } } }).maxInFlight,
      adaptive(2),
      "an adaptive max within the kind's concurrency"
    )
    assert.deepStrictEqual(
      decoded(WorkerOptions(undefined, true), { maxInFlight: { adaptive: { max: 500 } } }).maxInFlight,
      adaptive(500)
    )
    assert.deepStrictEqual(decoded(WorkerOptions(undefined, true), { maxInFlight: 1 }).maxInFlight, fixed(1))
    assert.strictEqual(worker.recycle, undefined, "recycle: never")
    assert.deepStrictEqual(decoded(WorkerOptions(), { recycle: { maxRequests: 10 } }).recycle, {
      maxRequests: 10,
      maxAgeMillis: Infinity,
      ageJitter: 0.1,
      maxMemoryBytes: Infinity,
      memoryCheckMillis: 1000,
      memoryProbe: undefined
    })
  })

  it.effect(
    "Worker.fromKind: maxInFlight defaults to adaptive in process, else to the kind's concurrency, else 1",
    () =>
      Effect.gen(function* () {
        const handler = (n: number) => Effect.succeed(n)
        const plain = yield* Worker.fromKind(WorkerId.make(0), WorkerKind.inProcess(handler))
        // Adaptive, up to 64; the limit starts at 1.
        assert.strictEqual(plain.maxInFlight, 64)
        assert.strictEqual((yield* plain.health).maxInFlight, 1)
        const wide = yield* Worker.fromKind(WorkerId.make(1), { ...WorkerKind.inProcess(handler), concurrency: 3 })
        assert.strictEqual(wide.maxInFlight, 3)
        assert.strictEqual((yield* wide.health).maxInFlight, 3)
        const custom = yield* Worker.fromKind(WorkerId.make(2), {
          name: "custom",
          spawn: Effect.succeed({ run: handler, exited: Effect.never })
        })
        assert.strictEqual(custom.maxInFlight, 1, "a kind of one's own keeps one slot")
      }).pipe(Effect.scoped)
  )

  it.effect("Worker.fromKind: an invalid maxInFlight is InvalidOptions, and nothing starts", () =>
    Effect.gen(function* () {
      const handler = (n: number) => Effect.succeed(n)
      const refused = (kind: WorkerKind.WorkerKind<number, number, never>, maxInFlight: unknown) =>
        Effect.map(Effect.flip(Worker.fromKind(WorkerId.make(0), kind, { maxInFlight } as never)), (e) => e.reason)
      const inProcess = WorkerKind.inProcess(handler)
      const four = { ...inProcess, concurrency: 4 }
      const wants = 'maxInFlight must be a positive integer, "adaptive" or { adaptive: { max } }'
      assert.strictEqual(yield* refused(inProcess, 0), `${wants}, got 0`)
      assert.strictEqual(yield* refused(inProcess, "fast"), `${wants}, got fast`)
      assert.strictEqual(yield* refused(inProcess, { max: 4 }), `${wants}, got [object Object]`)
      assert.strictEqual(
        yield* refused(inProcess, { adaptive: { max: 1.5 } }),
        "maxInFlight's adaptive max must be a positive integer, got 1.5"
      )
      assert.strictEqual(
        yield* refused(four, { adaptive: { max: 8 } }),
        "maxInFlight's adaptive max must be at most the kind's concurrency (4), got 8"
      )
    }).pipe(Effect.scoped)
  )

  const common = (settings: typeof SubprocessOptions.Type | typeof ThreadOptions.Type) => {
    assert.strictEqual(settings.error, DomainError)
    assert.strictEqual(settings.concurrency, 1)
    assertDuration(settings.startTimeout, "10 seconds")
    assertDuration(settings.cancelGrace, "1 second")
    assertDuration(settings.shutdownTimeout, "2 seconds")
    assertDuration(settings.heartbeatInterval, "500 millis")
    assertDuration(settings.silenceLimit, "1500 millis")
    assert.strictEqual(settings.stderr.logLevel, "Info")
    assert.strictEqual(settings.stderr.maxLineBytes, 4096)
    assert.strictEqual(settings.stderr.tailLines, 10)
  }

  it("Subprocess.CommonOptions and Subprocess.Options", () => {
    const settings = decoded(SubprocessOptions, { command: "node", ...schemas })
    common(settings)
    assert.deepStrictEqual(settings.args, [])
    assert.isUndefined(settings.cwd)
    assert.strictEqual(settings.inheritEnv, Subprocess.defaultInheritedEnv)
    assert.deepStrictEqual(settings.env, {})
    assert.strictEqual(settings.maxLineBytes, Protocol.defaultMaxLineBytes)
    assert.strictEqual(settings.maxLineBytes, 1024 * 1024)
    assertDuration(settings.killGrace, "2 seconds")
  })

  it("Thread.Options", () => {
    const settings = decoded(ThreadOptions, schemas)
    common(settings)
    assert.isUndefined(settings.execArgv, "the parent's process.execArgv")
    assert.deepStrictEqual(settings.argv, [])
    assert.strictEqual(settings.inheritEnv, Subprocess.defaultInheritedEnv)
    assert.deepStrictEqual(settings.env, {})
    assert.isUndefined(settings.resourceLimits, "Node's defaults")
    assertDuration(settings.killGrace, "2 seconds")
  })

  it("Remote.Options and Remote.PoolOptions", () => {
    const kind = decoded(RemoteOptions.KindOptions, schemas)
    const pool = decoded(RemoteOptions.PoolOptions, { addresses: [], ...schemas })
    for (const settings of [kind, pool]) {
      assert.strictEqual(settings.error, DomainError)
      assert.isUndefined(settings.token)
      assert.isUndefined(settings.tls)
      assert.strictEqual(settings.concurrency, 32)
      assertDuration(settings.connectTimeout, "2 seconds")
      assertDuration(settings.pingInterval, "500 millis")
      assertDuration(settings.pingTimeout, "1 second")
      assert.strictEqual(settings.maxFrameBytes, 1048576)
    }
    assert.isUndefined(pool.worker)
    assert.deepStrictEqual(pool.pool, {})
    assert.strictEqual(pool.firstId, 0)
  })

  it("Remote.ServeOptions", () => {
    const settings = decoded(RemoteOptions.ServeOptions, { port: 0, handler: Effect.succeed, ...schemas })
    assert.strictEqual(settings.error, DomainError)
    assert.strictEqual(settings.host, "127.0.0.1")
    assert.isUndefined(settings.token)
    assert.isUndefined(settings.tls)
    assert.strictEqual(settings.concurrency, 64)
    assert.isUndefined(settings.requestTimeout)
    assertDuration(settings.drainTimeout, "30 seconds")
    assertDuration(settings.handshakeTimeout, "5 seconds")
    assert.strictEqual(settings.maxFrameBytes, 1048576)
  })
})

describe("options: reasons", () => {
  it("a nested option's reason is its rule's own words, without the struct's path", () => {
    assert.strictEqual(
      reasonOf(PoolOptions, { ejection: { consecutiveFailures: 0 } }),
      "ejection.consecutiveFailures must be a positive integer, got 0"
    )
    assert.strictEqual(
      reasonOf(SubprocessOptions, { command: "node", ...schemas, stderr: { maxLineBytes: -1 } }),
      "stderr.maxLineBytes must be a positive integer, got -1"
    )
  })

  it("an options object, or a nested one, that is not an object says so", () => {
    assert.strictEqual(reasonOf(PoolOptions, null), "options must be an object, got null")
    assert.strictEqual(reasonOf(PoolOptions, { ejection: true }), "ejection must be false or an object, got true")
    assert.strictEqual(reasonOf(PoolOptions, { retry: 3 }), "retry must be an object, got 3")
    assert.strictEqual(reasonOf(ThreadOptions, { ...schemas, stderr: "loud" }), "stderr must be an object, got loud")
  })

  it("the first option to fail is reported, in the order of the options", () => {
    assert.strictEqual(
      reasonOf(PoolOptions, { queueCapacity: -1, spares: -1 }),
      "queueCapacity must be a non-negative integer, got -1"
    )
  })

  it("a kind's schemas must be Schemas", () => {
    assert.strictEqual(reasonOf(ThreadOptions, { response: Schema.Number }), "request must be a Schema, got undefined")
  })

  it.effect("WorkerPool.make fails with the reason; a kind made from invalid options carries it", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(WorkerPool.make({ retry: { window: "soon" as Duration.Input } }))
      assert.deepStrictEqual(
        error,
        new InvalidOptions({ reason: "retry.window must be a non-negative duration, got soon" })
      )
      const kind = Subprocess.make({ command: "node", ...schemas, heartbeatInterval: "2 seconds" })
      assert.deepStrictEqual(
        kind.invalid,
        new InvalidOptions({ reason: "silenceLimit must be longer than heartbeatInterval, got 1s 500ms and 2s" })
      )
    }).pipe(Effect.scoped)
  )
})

describe("options: decoded once, at the edge", () => {
  it.effect("Remote.pool: invalid options of the kind or of its workers fail it before any worker starts", () =>
    Effect.gen(function* () {
      const addresses = ["127.0.0.1:1"]
      assert.deepStrictEqual(
        yield* Effect.flip(Remote.pool({ addresses, ...schemas, pingInterval: 0 })),
        new InvalidOptions({ reason: "pingInterval must be at least 1 millisecond" })
      )
      assert.deepStrictEqual(
        yield* Effect.flip(Remote.pool({ addresses, ...schemas, worker: { maxInFlight: 0 } })),
        new InvalidOptions({
          reason: 'maxInFlight must be a positive integer, "adaptive" or { adaptive: { max } }, got 0'
        })
      )
      assert.deepStrictEqual(
        yield* Effect.flip(Remote.pool({ addresses, ...schemas, pool: { queueStrategy: "drop" as never } })),
        new InvalidOptions({ reason: 'queueStrategy must be one of "suspend", "fail", "dropOldest", got drop' })
      )
    }).pipe(Effect.scoped)
  )
})

/**
 * Each options Schema: a valid input, and its options, each with what its
 * reason starts with when a value of that option alone is invalid (its own
 * name, or a rule that ties it to another option).
 */
const edges: ReadonlyArray<{
  readonly name: string
  readonly schema: Rules.Rule<unknown>
  readonly valid: Record<string, unknown>
  readonly options: Record<string, ReadonlyArray<string>>
}> = [
  {
    name: "WorkerPool.Options",
    schema: PoolOptions,
    valid: {},
    options: {
      size: ["size", "size and worker must be given together", "size.min", "size.max"],
      "size.min": ["size.min", "size.max", "size and worker must be given together"],
      "size.max": ["size.max", "size.min", "size and worker must be given together"],
      idleTimeout: ["idleTimeout", "idleTimeout applies to an elastic size"],
      worker: ["worker", "size and worker must be given together"],
      policy: ["policy"],
      ejection: ["ejection"],
      "ejection.consecutiveFailures": ["ejection.consecutiveFailures"],
      "ejection.baseDuration": ["ejection.baseDuration"],
      "ejection.maxDuration": ["ejection.maxDuration"],
      "ejection.maxEjectedShare": ["ejection.maxEjectedShare"],
      "ejection.panicThreshold": ["ejection.panicThreshold"],
      name: ["name"],
      metrics: ["metrics"],
      "metrics.workerId": ["metrics.workerId"],
      timeout: ["timeout"],
      queueTimeout: ["queueTimeout"],
      queueCapacity: ["queueCapacity"],
      queueStrategy: ["queueStrategy"],
      retry: ["retry"],
      "retry.maxRetries": ["retry.maxRetries"],
      "retry.share": ["retry.share"],
      "retry.minPerWindow": ["retry.minPerWindow"],
      "retry.window": ["retry.window"],
      drain: ["drain"],
      spares: ["spares"]
    }
  },
  {
    name: "Worker.WorkerOptions",
    schema: WorkerOptions(),
    valid: {},
    options: {
      restart: ["restart"],
      maxRestarts: ["maxRestarts"],
      restartWindow: ["restartWindow"],
      resetBackoffAfter: ["resetBackoffAfter"],
      maxInFlight: ["maxInFlight"],
      recycle: ["recycle"],
      "recycle.maxRequests": ["recycle.maxRequests"],
      "recycle.maxAge": ["recycle.maxAge"],
      "recycle.ageJitter": ["recycle.ageJitter"],
      "recycle.maxMemoryMb": ["recycle.maxMemoryMb"],
      "recycle.memoryProbe": ["recycle.memoryProbe"],
      "recycle.memoryCheckInterval": ["recycle.memoryCheckInterval"]
    }
  },
  ...(["Thread.Options", "Subprocess.Options"] as const).map((name) => ({
    name,
    schema: name === "Thread.Options" ? ThreadOptions : SubprocessOptions,
    valid: name === "Thread.Options" ? schemas : { command: "node", ...schemas },
    options: {
      request: ["request"],
      response: ["response"],
      error: ["error"],
      concurrency: ["concurrency"],
      startTimeout: ["startTimeout"],
      cancelGrace: ["cancelGrace"],
      shutdownTimeout: ["shutdownTimeout"],
      heartbeatInterval: ["heartbeatInterval", "silenceLimit must be longer than heartbeatInterval"],
      silenceLimit: ["silenceLimit"],
      stderr: ["stderr"],
      "stderr.logLevel": ["stderr.logLevel"],
      "stderr.maxLineBytes": ["stderr.maxLineBytes"],
      "stderr.tailLines": ["stderr.tailLines"],
      killGrace: ["killGrace"],
      ...(name === "Thread.Options" ? {} : { command: ["command"], args: ["args"], maxLineBytes: ["maxLineBytes"] })
    }
  })),
  {
    name: "Remote.Options",
    schema: RemoteOptions.KindOptions,
    valid: schemas,
    options: {
      request: ["request"],
      response: ["response"],
      error: ["error"],
      token: ["token"],
      concurrency: ["concurrency"],
      connectTimeout: ["connectTimeout"],
      pingInterval: ["pingInterval", "pingTimeout must be at least pingInterval"],
      pingTimeout: ["pingTimeout"],
      maxFrameBytes: ["maxFrameBytes"]
    }
  },
  {
    name: "Remote.PoolOptions",
    schema: RemoteOptions.PoolOptions,
    valid: { addresses: [], ...schemas },
    options: { addresses: ["addresses"], firstId: ["firstId"], token: ["token"], pingTimeout: ["pingTimeout"] }
  },
  {
    name: "Remote.ServeOptions",
    schema: RemoteOptions.ServeOptions,
    valid: { port: 0, handler: Effect.succeed, ...schemas },
    options: {
      host: ["host"],
      port: ["port"],
      handler: ["handler"],
      request: ["request"],
      response: ["response"],
      error: ["error"],
      token: ["token"],
      concurrency: ["concurrency"],
      requestTimeout: ["requestTimeout"],
      drainTimeout: ["drainTimeout"],
      handshakeTimeout: ["handshakeTimeout"],
      maxFrameBytes: ["maxFrameBytes"]
    }
  }
]

/** Values of every shape an option could be given: valid ones, and all sorts of wrong ones. */
const Value = Schema.Union([
  Schema.Undefined,
  Schema.Null,
  Schema.Boolean,
  Schema.Number,
  Schema.Int,
  Schema.Literals([0, -1, 1, 0.5, 1.5, 4096]),
  Schema.String,
  Schema.Literals(["", "1 second", "250 millis", "0 millis", "Infinity", "soon", "Info", "Loud", "suspend", "drop"]),
  Schema.Literals(["127.0.0.1", "0.0.0.0", "localhost", "10.0.0.7:7400", "all"]),
  Schema.Array(Schema.String),
  Schema.Array(Schema.Number),
  Schema.Record(Schema.String, Schema.Number),
  Schema.Tuple([Schema.Number, Schema.Number])
])

/** `valid`, with the option at `path` (such as `"stderr.tailLines"`) set to `value`. */
const withOption = (valid: Record<string, unknown>, path: string, value: unknown): Record<string, unknown> => {
  const [head, ...rest] = path.split(".")
  if (rest.length === 0) return { ...valid, [head!]: value }
  return { ...valid, [head!]: withOption({}, rest.join("."), value) }
}

describe("options: any one option's value is valid, or its reason names that option", () => {
  for (const edge of edges) {
    const Case = Schema.Struct({ option: Schema.Literals(Object.keys(edge.options)), value: Value })
    it.effect.prop(
      edge.name,
      [Case],
      ([{ option, value }]) =>
        Effect.sync(() => {
          const result = Rules.decodeResult(edge.schema)(withOption(edge.valid, option, value))
          if (Result.isSuccess(result)) return
          assert.instanceOf(result.failure, InvalidOptions)
          const reason = result.failure.reason
          assert.isTrue(
            edge.options[option]!.some(
              (start) => reason === start || (/^[ ,]/.test(reason.slice(start.length)) && reason.startsWith(start))
            ),
            `${option} = ${Object.prototype.toString.call(value)}: ${reason}`
          )
        }),
      { arbitrary: { runs: 400 } }
    )
  }
})
