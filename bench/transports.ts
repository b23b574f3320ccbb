/**
 * The bare transports, without any pool: what `worker_threads` messages and a
 * JSON-lines pipe to a child process can carry on this machine. Two threads
 * (or two children) take tasks in turn, as a pool of 2 would; each task is a
 * promise its caller awaits. Unbatched: one message (one write) per task.
 * Batched: up to `batch` tasks per message (per write), sent when the batch
 * is full or at the end of the current microtask queue. Capped: at most
 * `cap` tasks in flight per thread (per child), the rest waiting in order,
 * and whatever a thread has room for sent in one message at the end of the
 * microtask queue: a pool's concurrency limit with nothing else of a pool,
 * the most a pool of that `concurrency` could carry on the transport.
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

/**
 * Answers by id, with at most `cap` items in flight per sink: an item waits in
 * order until a sink has room; each sink gets what it has room for in one
 * flush, at the end of the microtask queue.
 */
const makeCappedChannel = <Item>(sinks: ReadonlyArray<(items: ReadonlyArray<Item>) => void>, cap: number) => {
  const waiting = new Map<number, (value: number) => void>()
  const ownerOf = new Map<number, number>()
  const inFlight = sinks.map(() => 0)
  const buffers: Array<Array<Item>> = sinks.map(() => [])
  let queue: Array<readonly [number, Item]> = []
  let head = 0
  let nextId = 0
  let turn = 0
  let scheduled = false
  const flush = () => {
    scheduled = false
    for (let k = 0; k < sinks.length; k++) {
      if (buffers[k]!.length === 0) continue
      const items = buffers[k]!
      buffers[k] = []
      sinks[k]!(items)
    }
  }
  /** Gives every waiting item a sink with room, in turn. */
  const pump = () => {
    while (head < queue.length) {
      let k = -1
      for (let tried = 0; tried < sinks.length; tried++) {
        const candidate = (turn + tried) % sinks.length
        if (inFlight[candidate]! < cap) {
          k = candidate
          break
        }
      }
      if (k === -1) break
      turn = k + 1
      const [id, item] = queue[head++]!
      inFlight[k]!++
      ownerOf.set(id, k)
      buffers[k]!.push(item)
      if (!scheduled) {
        scheduled = true
        queueMicrotask(flush)
      }
    }
    // The items sent leave the queue's front now and then, so that it holds only those still waiting.
    if (head >= 1024 || head === queue.length) {
      queue = queue.slice(head)
      head = 0
    }
  }
  return {
    call: (make: (id: number) => Item): Promise<number> => {
      const id = nextId++
      const answer = new Promise<number>((resolve) => waiting.set(id, resolve))
      queue.push([id, make(id)])
      pump()
      return answer
    },
    answer: (id: number, value: number) => {
      const resolve = waiting.get(id)
      waiting.delete(id)
      const owner = ownerOf.get(id)
      ownerOf.delete(id)
      if (owner !== undefined) inFlight[owner]!--
      resolve?.(value)
      pump()
    }
  }
}

/** How a bare variant sends: one task per message, up to `batch` per message, or `cap` in flight per thread (child). */
export type BareShape = { readonly batch: number } | { readonly cap: number }

/** The channel of `shape` over `sinks`. */
const channelOf = <Item>(sinks: ReadonlyArray<(items: ReadonlyArray<Item>) => void>, shape: BareShape) =>
  "cap" in shape ? makeCappedChannel(sinks, shape.cap) : makeChannel(sinks, shape.batch)

type Message = readonly [number, number, number]

/** The name of the bare thread variant that sends as `shape` says. */
export const threadEchoName = (shape: BareShape): string =>
  "cap" in shape
    ? `bare worker_threads echo, ${shape.cap} in flight per thread`
    : shape.batch === 1
      ? "bare worker_threads echo, unbatched"
      : `bare worker_threads echo, ${shape.batch} tasks per message`

/** The name of the bare pipe variant that sends as `shape` says. */
export const pipeEchoName = (shape: BareShape): string =>
  "cap" in shape
    ? `bare JSON-lines pipe, ${shape.cap} in flight per child`
    : shape.batch === 1
      ? "bare JSON-lines pipe, unbatched"
      : `bare JSON-lines pipe, ${shape.batch} tasks per write`

/** Two bare worker threads running the echo script, sending as `shape` says. */
export const threadEcho = async (shape: BareShape): Promise<WireVariant> => {
  const threads = [new WorkerThreads.Worker(echoThread), new WorkerThreads.Worker(echoThread)]
  await Promise.all(threads.map((thread) => once(thread, "online")))
  const single = "batch" in shape && shape.batch === 1
  const channel = channelOf<Message>(
    threads.map((thread) => (single ? (items) => thread.postMessage(items[0]) : (items) => thread.postMessage(items))),
    shape
  )
  for (const thread of threads) {
    thread.on("message", (message: readonly [number, number] | ReadonlyArray<readonly [number, number]>) => {
      if (typeof message[0] === "number") channel.answer(message[0], message[1] as number)
      else for (const [id, value] of message as ReadonlyArray<readonly [number, number]>) channel.answer(id, value)
    })
  }
  return {
    name: threadEchoName(shape),
    family: "bare",
    run: (tasks, callers) => drive((t: Task) => channel.call((id) => [id, t.a, t.b]), tasks, callers),
    close: async () => {
      await Promise.all(threads.map((thread) => thread.terminate()))
    }
  }
}

/** Two bare child processes running the JSON-lines echo script, sending as `shape` says. */
export const pipeEcho = async (shape: BareShape): Promise<WireVariant> => {
  const single = "batch" in shape && shape.batch === 1
  const children = [0, 1].map(() =>
    ChildProcess.spawn(process.execPath, [echoPipe.pathname, ...(single ? [] : ["--batch"])], {
      stdio: ["pipe", "pipe", "inherit"]
    })
  )
  await Promise.all(children.map((child) => once(child, "spawn")))
  const channel = channelOf<string>(
    children.map((child) => (lines) => {
      child.stdin.write(lines.join(""))
    }),
    shape
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
    name: pipeEchoName(shape),
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
