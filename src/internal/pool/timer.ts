/**
 * The timer of the queue's deadlines: one fiber that sleeps until the
 * earliest deadline of a waiting request. It is set only when a deadline
 * earlier than the one it is set for appears; a request that leaves the
 * queue, which is what nearly all of them do, never touches it. It is forked
 * and interrupted after the step that sets it (in the engine's `Later`).
 */
import { Effect, type Fiber } from "effect"
import type { Later } from "../later.ts"

export class DeadlineTimer {
  private fiber: Fiber.Fiber<void> | undefined = undefined
  /** When it is set to fire, `Infinity` when it is not. */
  private at = Infinity
  /** The latest setting: an earlier one, not yet forked, gives way to it. */
  private token: object | undefined = undefined

  private readonly later: Later
  private readonly fork: (effect: Effect.Effect<void>) => Fiber.Fiber<void>
  private readonly now: () => number
  private readonly due: () => void

  constructor(options: {
    readonly later: Later
    readonly fork: (effect: Effect.Effect<void>) => Fiber.Fiber<void>
    readonly now: () => number
    /** Called, on the timer's fiber, when a deadline it was set for has come. */
    readonly due: () => void
  }) {
    this.later = options.later
    this.fork = options.fork
    this.now = options.now
    this.due = options.due
  }

  /** Sets the timer to `next` (epoch millis), unless it is set to fire by then. */
  arm(next: number): void {
    if (next >= this.at) return
    this.at = next
    const token = {}
    this.token = token
    this.later.run(() => {
      if (this.token !== token) return
      this.fiber?.interruptUnsafe()
      this.fiber = this.fork(Effect.andThen(Effect.sleep(Math.max(0, next - this.now())), Effect.sync(this.due)))
    })
  }

  /** It fired: it is set no more. */
  fired(): void {
    this.fiber = undefined
    this.at = Infinity
    this.token = undefined
  }

  /** Stops it for good (at shutdown). */
  stop(): void {
    this.token = undefined
    this.at = -Infinity
    this.fiber?.interruptUnsafe()
    this.fiber = undefined
  }
}
