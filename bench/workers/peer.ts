/** The worker of piscina and tinypool: a module whose default export runs the task. */
import { add } from "./task.ts"

export default add
