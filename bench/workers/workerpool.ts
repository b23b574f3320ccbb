/** The worker of workerpool: the task as a named method. */
import workerpool from "workerpool"
import { add } from "./task.ts"

workerpool.worker({ add })
