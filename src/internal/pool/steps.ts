/**
 * Steps: how the engine runs, one synchronous step at a time, never nested.
 *
 * A step is one run of the engine's own code, started by an entry point (a
 * caller's dispatch, a worker's answer, a caller that leaves, a change of a
 * worker's state, a timer). An entry point reached while a step runs (a
 * transport that answers synchronously, a worker that reports a crash in the
 * middle of a step) is posted to the inbox, and the running step applies it
 * before it ends. A step ends by serving the queue, once, and then again only
 * if what it applied since freed a slot. Nothing in a step runs another
 * fiber's code: waking a caller, publishing a change or forking a fiber is
 * done after the step, in one microtask (`Later`), so that no chain of
 * wake-ups grows the stack and no fiber sees the engine's state half updated.
 */
import { Cause, Effect, type Fiber } from "effect"
import { Later } from "../later.ts"

export abstract class Steps {
  /** A step runs. */
  protected busy = false
  /** Entry points reached during the step, applied before it ends. */
  private readonly inbox: Array<() => void> = []
  /** Something may let a waiting request be served: the step ends by serving the queue. */
  protected mayServe = false
  /** What runs after the step: wake-ups, publications, forks. */
  protected readonly later = new Later()

  /** Whether no request waits (then there is nothing to serve). */
  protected abstract get nothingWaits(): boolean
  /** Serves waiting requests, oldest first, for as long as a worker can take them. */
  protected abstract serveQueue(): void
  /** Runs `effect` on a fiber of the pool. */
  protected abstract fork(effect: Effect.Effect<void>): Fiber.Fiber<void>

  /** Ends a step: applies what was posted during it, then serves the queue, until nothing is left. */
  protected exit(): void {
    if (this.inbox.length === 0 && (!this.mayServe || this.nothingWaits)) {
      this.mayServe = false
      this.busy = false
      return
    }
    while (true) {
      this.applyPosted()
      if (!this.mayServe) break
      this.mayServe = false
      if (this.nothingWaits) continue
      try {
        this.serveQueue()
      } catch (defect) {
        this.defect(defect)
      }
    }
    this.busy = false
  }

  /** Applies what was posted to the inbox during this step. */
  protected applyPosted(): void {
    const inbox = this.inbox
    while (inbox.length > 0) {
      const task = inbox.shift()!
      try {
        task()
      } catch (defect) {
        this.defect(defect)
      }
    }
  }

  /** Applies `task` before the running step ends (an entry point reached mid-step). */
  protected duringStep(task: () => void): void {
    this.inbox.push(task)
  }

  /** Runs `f` as a step of its own, or, when a step runs, applies it before that step ends. */
  protected post(f: () => void): void {
    if (this.busy) {
      this.duringStep(f)
      return
    }
    this.busy = true
    try {
      f()
    } catch (defect) {
      this.defect(defect)
    } finally {
      this.exit()
    }
  }

  /** An effect that runs `f` as a step once the current one is over (for an entry point reached mid-step). */
  protected deferred<A, E>(f: () => Effect.Effect<A, E>): Effect.Effect<A, E> {
    return Effect.callback<A, E>((resume) => {
      this.later.run(() => resume(Effect.suspend(f)))
    })
  }

  /** A bug of the engine met where no caller can get it: logged. */
  protected defect(defect: unknown): void {
    this.background(Effect.logError("worker pool engine defect", Cause.die(defect)))
  }

  /** Runs `effect` on a fiber of the pool, after the step. */
  protected background(effect: Effect.Effect<void>): void {
    this.later.run(() => {
      this.fork(effect)
    })
  }
}
