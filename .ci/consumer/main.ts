/**
 * Consumer smoke test: uses effect-worker-pool as an npm consumer would, from
 * the packed tarball (dist/*.js and dist/*.d.ts), never from src/.
 */
import { Effect } from "effect"
import { DispatchPolicy, DomainError, Worker, WorkerCrash, WorkerId, WorkerPool } from "effect-worker-pool"

// A request is a number: negative ones are bad requests, 13 breaks the worker.
const handler = (n: number): Effect.Effect<number, DomainError | WorkerCrash> =>
  n < 0
    ? Effect.fail(new DomainError({ reason: `negative input ${n}` }))
    : n === 13
      ? Effect.fail(WorkerCrash.report("unlucky number"))
      : Effect.succeed(n * 2)

const describe = (pool: WorkerPool.WorkerPool<number, number>, n: number) =>
  pool.dispatch(n).pipe(
    Effect.map((value) => `ok ${n} -> ${value}`),
    Effect.catchTag("DomainError", (error) => Effect.succeed(`domain error for ${n}: ${error.reason}`)),
    Effect.catchTag("WorkerCrash", (crash) => Effect.succeed(`worker crash for ${n}: ${crash.reason.message}`))
  )

const program = Effect.scoped(
  Effect.gen(function* () {
    const pool = yield* WorkerPool.make({
      policy: DispatchPolicy.RoundRobin,
      size: 3,
      worker: (id) => Worker.make(id, handler)
    })
    const lines: Array<string> = [`policy ${pool.policy}, size ${yield* pool.size}`]
    const doubled = yield* Effect.forEach([1, 2, 3], (n) => pool.dispatch(n), { concurrency: "unbounded" })
    lines.push(`doubled ${doubled.join(",")}`)
    lines.push(yield* describe(pool, -1))
    lines.push(yield* describe(pool, 13))
    lines.push(yield* describe(pool, 20))
    const health = yield* pool.health
    lines.push(`crashes ${health.map(([id, h]) => `${id}:${h.crashes}`).join(" ")}`)
    const id: WorkerId = WorkerId.make(2)
    lines.push(`worker id ${id}`)
    return lines
  })
)

// Type-level checks: these lines must be errors, so that the test fails if the
// package's types resolve to `any` (e.g. a broken import in dist/*.d.ts).
// @ts-expect-error a pool of numbers does not take strings
export const badRequest = (pool: WorkerPool.WorkerPool<number, number>) => pool.dispatch("not a number")
// @ts-expect-error WorkerId is branded: a plain number is not one
export const badId: WorkerId = 3

const lines = await Effect.runPromise(program)
for (const line of lines) console.log(line)
console.log("consumer smoke: done")
