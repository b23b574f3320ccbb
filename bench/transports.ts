/**
 * The bare transports, without any pool: what `worker_threads` messages and a
 * JSON-lines pipe to a child process can carry on this machine. Two threads
 * (or two children) take tasks in turn, as a pool of 2 would; each task is a
 * promise its caller awaits. Unbatched: one message (one write) per task.
 * Batched: up to `batch` tasks per message (per write), sent when the batch
 * is full or at the end of the current microtask queue.
 */
import * as ChildProcess from "node:child_process"
import { once } from "node:events"
import * as WorkerThreads from "node:worker_threads"
import { drive, type WireVariant } from "./wireVariant.ts"
import type { Task } from "./workers/task.ts"

const echoThread = new URL("./workers/echo-thread.ts", import.meta.url)
const echoPipe = new URL("./workers/echo-pipe.ts", import.meta.url)

/** Answers by id, and a batcher that sends up to `batch` items per flush, in turn to each of `sinks`. */
const makeChannel = <Item>(sinks: ReadonlyArray<(items: ReadonlyArray<Item>) => void>, batch: number) => {
  const waiting = new Map<number, (value: number) => void>()
  let nextId = 0
  let turn = 0
  let buffer: Array<Item> = []
  let scheduled = false
  const flush = () => {
    scheduled = false
    if (buffer.length === 0) return
    const items = buffer
    buffer = []
    sinks[turn++ % sinks.length]!(items)
  }
  return {
    /** Queues an item made from a fresh id; resolves with the answer to that id. */
    call: (make: (id: number) => Item): Promise<number> => {
      const id = nextId++
      const answer = new Promise<number>((resolve) => waiting.set(id, resolve))
      buffer.push(make(id))
      if (buffer.length >= batch) flush()
      else if (!scheduled) {
        scheduled = true
        queueMicrotask(flush)
      }
      return answer
    },
    answer: (id: number, value: number) => {
      const resolve = waiting.get(id)
      waiting.delete(id)
      resolve?.(value)
    }
  }
}

type Message = readonly [number, number, number]

/** The name of the bare thread variant that sends `batch` tasks at most per message. */
export const threadEchoName = (batch: number): string =>
  batch === 1 ? "bare worker_threads echo, unbatched" : `bare worker_threads echo, ${batch} tasks per message`

/** The name of the bare pipe variant that sends `batch` tasks at most per write. */
export const pipeEchoName = (batch: number): string =>
  batch === 1 ? "bare JSON-lines pipe, unbatched" : `bare JSON-lines pipe, ${batch} tasks per write`

/** Two bare worker threads running the echo script; `batch` tasks at most per message. */
export const threadEcho = async (batch: number): Promise<WireVariant> => {
  const threads = [new WorkerThreads.Worker(echoThread), new WorkerThreads.Worker(echoThread)]
  await Promise.all(threads.map((thread) => once(thread, "online")))
  const channel = makeChannel<Message>(
    threads.map((thread) =>
      batch === 1 ? (items) => thread.postMessage(items[0]) : (items) => thread.postMessage(items)
    ),
    batch
  )
  for (const thread of threads) {
    thread.on("message", (message: readonly [number, number] | ReadonlyArray<readonly [number, number]>) => {
      if (typeof message[0] === "number") channel.answer(message[0], message[1] as number)
      else for (const [id, value] of message as ReadonlyArray<readonly [number, number]>) channel.answer(id, value)
    })
  }
  return {
    name: threadEchoName(batch),
    family: "bare",
    run: (tasks, callers) => drive((t: Task) => channel.call((id) => [id, t.a, t.b]), tasks, callers),
    close: async () => {
      await Promise.all(threads.map((thread) => thread.terminate()))
    }
  }
}

/** Two bare child processes running the JSON-lines echo script; `batch` tasks at most per write. */
export const pipeEcho = async (batch: number): Promise<WireVariant> => {
  const children = [0, 1].map(() =>
    ChildProcess.spawn(process.execPath, [echoPipe.pathname, ...(batch === 1 ? [] : ["--batch"])], {
      stdio: ["pipe", "pipe", "inherit"]
    })
  )
  await Promise.all(children.map((child) => once(child, "spawn")))
  const channel = makeChannel<string>(
    children.map((child) => (lines) => {
      child.stdin.write(lines.join(""))
    }),
    batch
  )
  for (const child of children) {
    let rest = ""
    child.stdout.setEncoding("utf8")
    child.stdout.on("data", (chunk: string) => {
      const lines = (rest + chunk).split("\n")
      rest = lines.pop()!
      for (const line of lines) {
        const { id, r } = JSON.parse(line) as { id: number; r: number }
        channel.answer(id, r)
      }
    })
  }
  return {
    name: pipeEchoName(batch),
    family: "bare",
    run: (tasks, callers) =>
      drive((t: Task) => channel.call((id) => `${JSON.stringify({ id, a: t.a, b: t.b })}\n`), tasks, callers),
    close: async () => {
      await Promise.all(
        children.map(async (child) => {
          if (child.exitCode !== null || child.signalCode !== null) return
          const exited = once(child, "exit")
          child.stdin.end()
          const timer = setTimeout(() => child.kill("SIGKILL"), 2000)
          await exited
          clearTimeout(timer)
        })
      )
    }
  }
}
