/**
 * Work the pool hands to other fibers (waking a waiting caller, publishing a
 * change) runs after the pool's own step, in one task of Effect's scheduler,
 * never in the middle of it: so no caller's code runs while the pool's state
 * is half updated, and no chain of wake-ups grows the stack.
 */
import type { SchedulerDispatcher } from "effect/Scheduler"

export class Later {
  private tasks: Array<() => void> = []
  private scheduled = false

  private readonly dispatcher: SchedulerDispatcher

  constructor(dispatcher: SchedulerDispatcher) {
    this.dispatcher = dispatcher
  }

  /** Runs `task` in the next batch. */
  run(task: () => void): void {
    this.tasks.push(task)
    if (this.scheduled) return
    this.scheduled = true
    this.dispatcher.scheduleTask(this.flush, 0)
  }

  /** Runs what is pending now. */
  readonly flush = () => {
    this.scheduled = false
    const tasks = this.tasks
    this.tasks = []
    for (let i = 0; i < tasks.length; i++) tasks[i]!()
  }
}
