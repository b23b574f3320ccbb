/** The worker of poolifier: a `ThreadWorker` running the task. */
import { ThreadWorker } from "poolifier"
import { add, type Task } from "./task.ts"

export default new ThreadWorker<Task, number>((task) => add(task!))
