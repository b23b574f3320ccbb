/**
 * The peer pools, each with 2 threads, at their defaults except where the
 * name says: piscina (and with 64 concurrent tasks per worker), tinypool,
 * workerpool, poolifier's `FixedThreadPool` (task queue off, and on).
 */
import { once } from "node:events"
import { Piscina } from "piscina"
import { FixedThreadPool } from "poolifier"
import { Tinypool } from "tinypool"
import workerpool from "workerpool"
import { drive, type WireVariant } from "./wireVariant.ts"
import type { Task } from "./workers/task.ts"

const script = (name: string) => new URL(`./workers/${name}`, import.meta.url)

/** The name of the peer that the wire goal is set against. */
export const poolifierQueueOff = "poolifier FixedThreadPool, task queue off"

const piscina = (concurrentTasksPerWorker: number | undefined): WireVariant => {
  const pool = new Piscina<Task, number>({
    filename: script("peer.ts").href,
    minThreads: 2,
    maxThreads: 2,
    ...(concurrentTasksPerWorker === undefined ? {} : { concurrentTasksPerWorker })
  })
  return {
    name:
      concurrentTasksPerWorker === undefined
        ? "piscina"
        : `piscina, concurrentTasksPerWorker ${concurrentTasksPerWorker}`,
    family: "peer",
    run: (tasks, callers) => drive((task) => pool.run(task), tasks, callers),
    close: () => pool.destroy()
  }
}

const tinypool = (): WireVariant => {
  const pool = new Tinypool({ filename: script("peer.ts").href, minThreads: 2, maxThreads: 2 })
  return {
    name: "tinypool",
    family: "peer",
    run: (tasks, callers) => drive((task) => pool.run(task) as Promise<number>, tasks, callers),
    close: () => pool.destroy()
  }
}

const workerpoolPeer = (): WireVariant => {
  const pool = workerpool.pool(script("workerpool.ts").pathname, {
    minWorkers: 2,
    maxWorkers: 2,
    workerType: "thread"
  })
  return {
    name: "workerpool",
    family: "peer",
    run: (tasks, callers) => drive((task) => pool.exec("add", [task]) as Promise<number>, tasks, callers),
    close: async () => {
      await pool.terminate()
    }
  }
}

const poolifier = (enableTasksQueue: boolean): WireVariant => {
  const pool = new FixedThreadPool<Task, number>(2, script("poolifier.ts").pathname, { enableTasksQueue })
  // poolifier's `destroy` sometimes never settles although its threads have
  // exited: closing waits for either, then makes sure of the threads.
  const threads = pool.workerNodes.map((node) => node.worker)
  const exited = Promise.all(threads.map((thread) => once(thread, "exit")))
  return {
    name: enableTasksQueue ? "poolifier FixedThreadPool, task queue on" : poolifierQueueOff,
    family: "peer",
    run: (tasks, callers) => drive((task) => pool.execute(task), tasks, callers),
    close: async () => {
      await Promise.race([pool.destroy(), exited])
      await Promise.all(threads.map((thread) => thread.terminate()))
    }
  }
}

/** Every peer variant, in report order. */
export const makePeers = (): Array<WireVariant> => [
  piscina(undefined),
  piscina(64),
  tinypool(),
  workerpoolPeer(),
  poolifier(false),
  poolifier(true)
]
