/**
 * The way to one address's runner, held by a membership: open while the
 * address is a member. When the address leaves, the gate closes: each live
 * connection to it is told (and ends cleanly, as when its runner drains: no
 * new request goes to it, those it holds finish), and no new connection is
 * made while it stays closed. `idle` tells the membership when the last
 * connection has ended, so that it removes the worker only then, without
 * failing a request. Opened again (the address came back before its worker
 * was removed), connections are made again.
 */
import { Deferred, Effect, Exit } from "effect"

export class Gate {
  private isOpen = true
  private live = 0
  private readonly listeners = new Set<() => void>()
  private opened: Deferred.Deferred<void> | undefined
  private emptied: Deferred.Deferred<void> | undefined

  /** Completes at once while the gate is open; else when it opens. */
  readonly whenOpen: Effect.Effect<void> = Effect.suspend(() => {
    if (this.isOpen) return Effect.void
    this.opened ??= Deferred.makeUnsafe<void>()
    return Deferred.await(this.opened)
  })

  /** Completes once the gate is closed and no connection is left. */
  readonly idle: Effect.Effect<void> = Effect.suspend(() => {
    if (!this.isOpen && this.live === 0) return Effect.void
    this.emptied ??= Deferred.makeUnsafe<void>()
    return Deferred.await(this.emptied)
  })

  /**
   * A connection is up: `onClose` is called when the gate closes (at once if
   * it is closed now). Returns what to call when the connection has ended.
   */
  enter(onClose: () => void): () => void {
    this.live++
    let left = false
    if (!this.isOpen) onClose()
    else this.listeners.add(onClose)
    return () => {
      if (left) return
      left = true
      this.listeners.delete(onClose)
      this.live--
      this.checkIdle()
    }
  }

  /** The address left: live connections end cleanly, no new one is made. */
  close(): void {
    if (!this.isOpen) return
    this.isOpen = false
    const listeners = [...this.listeners]
    this.listeners.clear()
    for (const listener of listeners) listener()
    this.checkIdle()
  }

  /** The address is a member (again). */
  open(): void {
    if (this.isOpen) return
    this.isOpen = true
    this.emptied = undefined
    const opened = this.opened
    this.opened = undefined
    if (opened !== undefined) Deferred.doneUnsafe(opened, Exit.void)
  }

  private checkIdle(): void {
    if (this.isOpen || this.live > 0 || this.emptied === undefined) return
    const emptied = this.emptied
    this.emptied = undefined
    Deferred.doneUnsafe(emptied, Exit.void)
  }
}
