/**
 * Work the pool hands to other fibers (waking a waiting caller, publishing a
 * change) runs after the pool's own step, never in the middle of it: so no
 * caller's code runs while the pool's state is half updated, and no chain of
 * wake-ups grows the stack. It runs in one microtask, at the end of the
 * synchronous run that made it, so that a caller woken for a slot sends its
 * request in the same turn of the event loop as the answer that freed the
 * slot (and in the same batch as the other requests of that turn).
 */
export class Later {
  /** Pairs: a function, and the value it is called with. */
  private tasks: Array<unknown> = []
  private scheduled = false

  /** Runs `task` in the next batch. */
  run(task: () => void): void {
    this.call(task, undefined)
  }

  /** Calls `f` with `value` in the next batch (a wake-up that needs no closure of its own). */
  call<A>(f: (value: A) => void, value: A): void {
    this.tasks.push(f, value)
    if (this.scheduled) return
    this.scheduled = true
    queueMicrotask(this.flush)
  }

  /** Runs what is pending now. */
  readonly flush = () => {
    this.scheduled = false
    const tasks = this.tasks
    this.tasks = []
    for (let i = 0; i < tasks.length; i += 2) (tasks[i] as (value: unknown) => void)(tasks[i + 1])
  }
}
