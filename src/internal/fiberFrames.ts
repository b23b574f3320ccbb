/**
 * Frames put on a fiber's stack directly, as Effect's own `Pool.use` and
 * `Semaphore` do (`onExitUnsafe`): a dispatch that would otherwise be an
 * effect around an effect around the handler (each of which, evaluated, only
 * pushes its frame and returns the effect inside) pushes the same frames
 * itself while its caller's fiber evaluates it, and returns the handler's
 * effect. An exit frame is the very object `Effect.onExitPrimitive` makes,
 * so it behaves as it does when evaluated; what is saved is one turn of the
 * fiber's run loop per frame.
 *
 * A frame may be pushed only from the evaluation of a primitive on the fiber
 * that runs it (`Effect.withFiber`, `Effect.suspend`), whose result is the
 * effect the frames wrap, returned as it is.
 *
 * A run's frame (`pushRun`) is one frame of this module's own where an
 * exit frame within a failure's frame would be two: it is called by the run
 * loop as `onExitPrimitive`'s frame is (the keys and the frame that restores
 * interruptibility are found in that frame once, `canPushRun`).
 *
 * The stack is a field of Effect's fiber runtime (`_stack`): where a runtime
 * lays its fiber out otherwise (`canPush` is false), the engine makes the
 * wrapping effects instead. test/caller-fiber.test.ts asserts that the
 * Effect this package is built with has it.
 */
import type { Cause, Fiber } from "effect"
import { Effect, Exit } from "effect"

interface Stacked {
  readonly _stack: Array<unknown>
}

/** A frame pushed here: its handler reads what it is about from the frame (`this.about`), not from a closure. */
export interface Frame<About> {
  readonly about: About
}

let pushable: boolean | undefined

/** Whether `fiber` keeps its frames where `push` puts them (one check for the process: every fiber is alike). */
export const canPush = (fiber: Fiber.Fiber<unknown, unknown>): boolean => (pushable ??= hasStack(fiber))

/** Whether `fiber` has the stack of frames this module pushes on (`canPush`, without its memory). */
export const hasStack = (fiber: Fiber.Fiber<unknown, unknown>): boolean =>
  "_stack" in fiber && Array.isArray((fiber as unknown as Stacked)._stack)

/**
 * Pushes on `fiber` the frame of `Effect.onExitPrimitive(self, handler)`:
 * `handler` sees how what follows ends, called on the frame, whose `about`
 * is `about`. A handler shared by every frame (no closure per frame) is the
 * point: a dispatch makes no function.
 */
export const pushOnExit = <About, A, E>(
  fiber: Fiber.Fiber<unknown, unknown>,
  about: About,
  handler: (this: Frame<About>, exit: Exit.Exit<A, E>) => Effect.Effect<void> | undefined
): void => {
  ;(fiber as unknown as Stacked)._stack.push(onExit(undefined as never, about, handler))
}

/** `Effect.onExitPrimitive(self, handler)`, `handler` called on the frame (`this.about`): where frames cannot be pushed. */
export const onExit = <About, A, E, R>(
  self: Effect.Effect<A, E, R>,
  about: About,
  handler: (this: Frame<About>, exit: Exit.Exit<A, E>) => Effect.Effect<void> | undefined
): Effect.Effect<A, E, R> => {
  const frame = Effect.onExitPrimitive(self, handler as never)
  ;(frame as unknown as { about: About }).about = about
  return frame
}

/** `Effect.catchCause(self, f)`, `f` called on the frame (`this.about`): where frames cannot be pushed. */
export const catchCause = <About, A, E, R, A2, E2>(
  self: Effect.Effect<A, E, R>,
  about: About,
  f: (this: Frame<About>, cause: Cause.Cause<E>) => Effect.Effect<A2, E2>
): Effect.Effect<A | A2, E2, R> => {
  const frame = Effect.catchCause(self, f as never)
  ;(frame as unknown as { about: About }).about = about
  return frame as never
}

/**
 * What a frame that sees how what follows ends is made of, found once in
 * Effect's own `onExitPrimitive` frame: the keys the run loop calls a frame
 * by (on success, on failure, on every way out), and the frame that restores
 * a fiber's interruptibility. `undefined` where the runtime is laid out
 * otherwise: then `canPushRun` is false.
 */
export interface RunKeys {
  readonly success: string
  readonly failure: string
  readonly always: string
  readonly restore: unknown
}

/** The keys of a run's frame, read in `proto` (`onExitPrimitive`'s frame's); `undefined` where it is laid out otherwise. */
export const findRunKeys = (
  proto: Record<string, unknown> = Object.getPrototypeOf(Effect.onExitPrimitive(Effect.void, () => undefined))
): RunKeys | undefined => {
  try {
    const key = (suffix: string) => Object.keys(proto).find((k) => k.endsWith(suffix) && typeof proto[k] === "function")
    const success = key("/successCont")
    const failure = key("/failureCont")
    const always = key("/ensureCont")
    if (success === undefined || failure === undefined || always === undefined) return undefined
    // The frame `onExitPrimitive` pushes to make an interruptible fiber uninterruptible until it is popped.
    const probe = { interruptible: true, _stack: [] as Array<unknown> }
    ;(proto[always] as (fiber: unknown) => unknown).call({}, probe)
    if (probe.interruptible || probe._stack.length !== 1) return undefined
    return { success, failure, always, restore: probe._stack[0] }
  } catch {
    return undefined
  }
}

/** The fields of Effect's fiber runtime a run frame reads. */
interface RunFiber {
  readonly _stack: Array<unknown>
  interruptible: boolean
  readonly _interruptedCause: unknown
  /** Pops frames to the next one called on `key` (after those called on every way out). */
  getCont(key: string): Record<string, (value: unknown, fiber: RunFiber, exit: unknown) => unknown> | undefined
  /** Ends the fiber's run loop with `exit`. */
  yieldWith(exit: unknown): unknown
}

/** A frame pushed by `pushRun`. */
interface RunFrame<About> extends Frame<About> {
  readonly ended: (this: Frame<About>, exit: Exit.Exit<any, any>) => Effect.Effect<void> | undefined
  readonly failed: (this: Frame<About>, exit: Exit.Exit<any, any>) => Effect.Effect<any, any>
  /** The frame made its fiber uninterruptible (and pushed the frame that restores it). */
  restores: boolean
}

/** A frame of `pushRun`: its methods, the run loop's keys, are set once found (`canPushRun`). */
class RunFrameImpl<About> {
  restores = false
  readonly about: About
  readonly ended: RunFrame<About>["ended"]
  readonly failed: RunFrame<About>["failed"]
  constructor(about: About, ended: RunFrame<About>["ended"], failed: RunFrame<About>["failed"]) {
    this.about = about
    this.ended = ended
    this.failed = failed
  }
}

let runKeys: RunKeys | undefined | null = null

const runFrameProto = (keys: RunKeys): Record<string, unknown> => {
  /** What a failure's caller sees once `ended` ran: what `failed` says, unless the fiber is leaving. */
  const afterFailure = <About>(frame: RunFrame<About>, fiber: RunFiber, exit: Exit.Exit<any, any>) => {
    // Interrupted, and interruptible again once this frame is done: the run
    // loop would skip a recovery here (as it skips `catchCause`): the failure
    // goes on as it is, and the fiber acts on its interruption.
    if (frame.restores && fiber._interruptedCause !== undefined) return exit
    const seen = frame.failed(exit)
    if (seen === exit || Exit.isExit(seen) || !frame.restores) return seen
    // Anything more than an outcome (a retry) runs where its caller put it:
    // the fiber is made interruptible again first (the frame on top is the
    // one that would do it; no interruption is held, see above).
    fiber._stack.pop()
    fiber.interruptible = true
    return seen
  }
  return {
    [keys.always](this: RunFrame<unknown>, fiber: RunFiber) {
      if (!fiber.interruptible) return undefined
      fiber._stack.push(keys.restore)
      fiber.interruptible = false
      this.restores = true
      return undefined
    },
    [keys.success](this: RunFrame<unknown>, value: unknown, fiber: RunFiber, exit?: Exit.Exit<any, any>) {
      const done = exit ?? Exit.succeed(value)
      const after = endedOf(this, done)
      if (after !== undefined) return Effect.flatMap(after, () => done)
      // Nothing more runs here: the fiber is made interruptible again now
      // (what the frame on top would do), unless it holds an interruption,
      // which that frame acts on.
      if (this.restores) {
        if (fiber._interruptedCause !== undefined) return done
        fiber._stack.pop()
        fiber.interruptible = true
      }
      // The success goes on to the next frame at once, as a value does
      // (`Effect.sync`): the run loop need not turn once more for it.
      const next = fiber.getCont(keys.success)
      return next === undefined ? fiber.yieldWith(done) : next[keys.success](value, fiber, done)
    },
    [keys.failure](this: RunFrame<unknown>, cause: Cause.Cause<unknown>, fiber: RunFiber, exit?: Exit.Exit<any, any>) {
      const done = exit ?? Exit.failCause(cause)
      const after = endedOf(this, done)
      return after === undefined
        ? afterFailure(this, fiber, done)
        : Effect.flatMap(after, () => afterFailure(this, fiber, done))
    }
  }
}

/**
 * Whether `pushRun` can push its frame on `fiber` (one check for the
 * process): the fiber has a stack (`canPush`) and the run loop calls frames
 * the way `onExitPrimitive`'s frame is called.
 */
export const canPushRun = (fiber: Fiber.Fiber<unknown, unknown>): boolean => {
  if (runKeys === null) {
    runKeys = findRunKeys()
    if (runKeys !== undefined) Object.assign(RunFrameImpl.prototype, runFrameProto(runKeys))
  }
  if (runKeys === undefined) return false
  runnable ??= hasRunLoop(fiber)
  return runnable
}

let runnable: boolean | undefined

/** Whether `fiber` has what a run's frame uses of it (`canPushRun`, without its memory: every fiber is alike). */
export const hasRunLoop = (fiber: Fiber.Fiber<unknown, unknown>): boolean => {
  const loop = fiber as unknown as Partial<RunFiber>
  return hasStack(fiber) && typeof loop.getCont === "function" && typeof loop.yieldWith === "function"
}

/** What a run's frame's `ended` says of `done`: a throw of it is a defect that follows. */
const endedOf = (frame: RunFrame<unknown>, done: Exit.Exit<any, any>): Effect.Effect<void> | undefined => {
  try {
    return frame.ended(done)
  } catch (defect) {
    return Exit.die(defect)
  }
}

/**
 * Pushes on `fiber` one frame for a run: `ended` sees how what follows ends,
 * where the fiber cannot be interrupted (as `onExit`'s handler does); then,
 * on a failure, the caller gets what `failed` says, unless the fiber holds an
 * interruption and is interruptible outside this frame, when the failure
 * goes on as it is (as a `catchCause` around an `onExit` is skipped). One
 * frame where `onExit` within `catchCause` makes two: one turn of the run
 * loop, and one object, less per run. Only where `canPushRun(fiber)`.
 */
export const pushRun = <About>(
  fiber: Fiber.Fiber<unknown, unknown>,
  about: About,
  ended: (this: Frame<About>, exit: Exit.Exit<any, any>) => Effect.Effect<void> | undefined,
  failed: (this: Frame<About>, exit: Exit.Exit<any, any>) => Effect.Effect<any, any>
): void => {
  ;(fiber as unknown as Stacked)._stack.push(new RunFrameImpl(about, ended, failed))
}
