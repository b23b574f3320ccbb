/**
 * The seam between the pool and the ways a worker can be isolated.
 *
 * A worker kind knows how to bring one *incarnation* of a worker to life (a
 * fiber with its handler, later a thread or a subprocess) and how to send it
 * one request. Everything else, the counters, the crash classification, the
 * supervision and restarts, is written once in {@link Worker.fromKind} and is
 * the same for every kind.
 *
 * @since 0.1.0
 */

import type { Scope, Tracer } from "effect"
import { Effect } from "effect"
import { markInProcess } from "./internal/inProcessKinds.ts"
import type { InvalidOptions, WorkerCrash } from "./WorkerError.ts"

/**
 * A request handler: turns a request into a response, or fails with a domain
 * error (the request was bad) or a `WorkerCrash` (the worker is broken).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { DomainError, type WorkerKind } from "effect-worker-pool"
 *
 * const double: WorkerKind.Handler<number, number, DomainError> = (n) =>
 *   n < 0 ? Effect.fail(new DomainError({ reason: "negative input" })) : Effect.succeed(n * 2)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type Handler<Req, Resp, E = never> = (request: Req) => Effect.Effect<Resp, E | WorkerCrash>

/**
 * One live incarnation of a worker, as its kind started it.
 *
 * - `run` sends one request to it. It may be called concurrently; the fiber
 *   running it is interrupted when the caller gives up or the incarnation is
 *   torn down.
 * - `exited` completes when the incarnation dies on its own (a process
 *   exited, a thread threw); kinds that cannot die by themselves use
 *   `Effect.never`. A crash whose reason is `Stopped` is a clean end, not a
 *   crash: the incarnation said it takes no more requests (a draining remote
 *   runner does). It leaves selection at once, the requests it holds run to
 *   their end, and it is started again after its restart schedule's first
 *   delay. That start is not a restart: no crash, failure in a row or
 *   restart is counted, and the backoff and the restart budget stay as
 *   they were.
 * - `restartOnTimeout` says what a request timeout does to it.
 *
 * Its resources belong to the `Scope` in which `spawn` ran: the supervisor
 * closes that scope on a crash, before a restart, and on shutdown.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type { WorkerKind } from "effect-worker-pool"
 *
 * const incarnation: WorkerKind.Incarnation<string, number, never> = {
 *   run: (s) => Effect.succeed(s.length),
 *   exited: Effect.never
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Incarnation<Req, Resp, E> {
  readonly run: Handler<Req, Resp, E>
  readonly exited: Effect.Effect<WorkerCrash>
  /**
   * When `true`, a request that runs past its timeout crashes the
   * incarnation, so that it is torn down and replaced (for kinds whose work
   * cannot be stopped once wedged, such as a subprocess). Otherwise the
   * request's fiber is interrupted and the incarnation goes on.
   */
  readonly restartOnTimeout?: boolean | undefined
  /**
   * When `true`, `run` fails with `WorkerCrash` by itself once the
   * incarnation is dead (the out-of-process kinds do: a dead child fails
   * every request it held), so the worker runs every request on its caller's
   * fiber. Otherwise a request without a `timeout` runs on its caller's
   * fiber too, and its incarnation's death (another request's crash, a stop)
   * interrupts it inside the request.
   */
  readonly settlesOnDeath?: boolean | undefined
  /**
   * Listens to the incarnation's memory reports, in bytes: `listener` is
   * called with the last report at once, if there was one, and with each one
   * after. The thread and subprocess kinds have it: their runner reports a
   * thread's heap in use or a process's resident set size when its worker
   * recycles over a memory limit (`Worker.RecycleOptions.maxMemoryMb`).
   * Optional; an incarnation without it is measured by the worker's
   * `memoryProbe`, if it has one.
   */
  readonly memory?: ((listener: (bytes: number) => void) => void) | undefined
  /**
   * Sends one request without a fiber: `done` is called exactly once with its
   * outcome (an `Exit`, or an effect for a schema that decodes
   * asynchronously); the returned function cancels it, and `done` then comes
   * once the incarnation has confirmed the cancel (with an interruption) or
   * died (with its crash). A kind that has it (the out-of-process kinds do)
   * lets the pool send a waiting request the moment a slot frees up, its
   * caller waking only with the outcome, and keeps a cancelled request's slot
   * taken until the child has let go of it. `span` is the dispatch's span
   * when it is traced: the request carries it to the child. Optional.
   *
   * An outcome given before `submit` returns says the request was not sent:
   * an `InvalidRequest` (or another error of the request's own) is its
   * outcome; a `WorkerCrash` says the incarnation is dead, and the pool ends
   * it (counted as one crash) and gives the request to another worker, or to
   * this one once it is back, since it never ran. Whatever `done` is called
   * from, the pool applies it in a step of its own: it never runs the pool's
   * code in the middle of `submit`. A `submit` that throws is a defect of the
   * worker, as a handler's throw is: its caller gets a `WorkerCrash` (reason
   * `Defect`) and the incarnation is ended and restarted.
   */
  readonly submit?:
    | ((
        request: Req,
        done: (outcome: Effect.Effect<Resp, E | WorkerCrash>) => void,
        span?: Tracer.AnySpan | undefined
      ) => () => void)
    | undefined
}

/**
 * A way to isolate a worker: its name (shown in logs and health), how to
 * spawn an incarnation, and optionally how many requests one serves at once. `spawn` fails with `WorkerCrash` when the incarnation
 * cannot start; any other failure or defect of `spawn` is treated the same way.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Worker, WorkerId, type WorkerKind } from "effect-worker-pool"
 *
 * // A kind of your own: one incarnation per start, here a plain fiber.
 * const echo: WorkerKind.WorkerKind<string, string, never> = {
 *   name: "echo",
 *   spawn: Effect.succeed({ run: (s: string) => Effect.succeed(s), exited: Effect.never })
 * }
 *
 * const program = Effect.scoped(
 *   Effect.gen(function* () {
 *     const worker = yield* Worker.fromKind(WorkerId.make(0), echo)
 *     return yield* worker.dispatch("hello")
 *   })
 * )
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface WorkerKind<Req, Resp, E, R = never> {
  readonly name: string
  readonly spawn: Effect.Effect<Incarnation<Req, Resp, E>, unknown, R | Scope.Scope>
  /**
   * How many requests one incarnation serves at once; a worker of this kind
   * gets it as its default `maxInFlight` (else 1).
   */
  readonly concurrency?: number | undefined
  /**
   * Whether a pool may keep spare incarnations of this kind started ahead,
   * and hand one to a worker of this kind that crashed (the thread and
   * subprocess kinds allow it: their starts take hundreds of milliseconds).
   * A spare serves the workers made with this very kind value.
   */
  readonly spare?: boolean | undefined
  /**
   * Set on a kind made from invalid options (`Thread.make`, `Subprocess.make`
   * return one rather than throw): `Worker.fromKind` fails with it, and
   * nothing starts.
   */
  readonly invalid?: InvalidOptions | undefined
}

/**
 * The in-process kind: each request runs `handler` on a fiber of its own.
 * Nothing needs to start, so `spawn` always succeeds.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { WorkerKind } from "effect-worker-pool"
 *
 * const kind = WorkerKind.inProcess((n: number) => Effect.succeed(n + 1))
 * console.log(kind.name) // "in-process"
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const inProcess = <Req, Resp, E = never>(handler: Handler<Req, Resp, E>): WorkerKind<Req, Resp, E> =>
  markInProcess({
    name: "in-process",
    spawn: Effect.succeed({ run: handler, exited: Effect.never })
  })

/**
 * The in-process kind with a scoped initialiser: `initialise` runs at every
 * start (the first and each restart) and builds the handler. Whatever it
 * acquires in its `Scope` (a model, a connection) lives exactly as long as that
 * incarnation: it is released when the worker crashes, before it restarts, and
 * when it shuts down. If `initialise` fails or dies, the start counts as a
 * crash and the supervisor tries again later.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { WorkerKind } from "effect-worker-pool"
 *
 * const kind = WorkerKind.inProcessScoped(
 *   Effect.gen(function* () {
 *     const table = yield* Effect.acquireRelease(
 *       Effect.sync(() => new Map<string, number>([["a", 1]])),
 *       (t) => Effect.sync(() => t.clear())
 *     )
 *     return (key: string) => Effect.succeed(table.get(key) ?? 0)
 *   })
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const inProcessScoped = <Req, Resp, E = never, InitE = never, R = never>(
  initialise: Effect.Effect<Handler<Req, Resp, E>, InitE, R | Scope.Scope>
): WorkerKind<Req, Resp, E, R> =>
  markInProcess({
    name: "in-process",
    spawn: Effect.map(initialise, (run) => ({ run, exited: Effect.never }))
  })
