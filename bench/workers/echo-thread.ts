/**
 * The bare `worker_threads` baseline: answers `[id, a, b]` with `[id, a + b]`,
 * and a batch (an array of those) with an array of answers, in one message.
 */
import { parentPort } from "node:worker_threads"

type Message = readonly [number, number, number]

parentPort!.on("message", (message: Message | ReadonlyArray<Message>) => {
  if (typeof message[0] === "number") {
    const [id, a, b] = message as Message
    parentPort!.postMessage([id, a + b])
  } else {
    parentPort!.postMessage((message as ReadonlyArray<Message>).map(([id, a, b]) => [id, a + b]))
  }
})
