/**
 * effect-worker-pool: a pool of isolated, supervised workers for Effect.
 *
 * @since 0.1.0
 */

/**
 * Dispatch policies: pure functions that pick a healthy worker.
 *
 * @since 0.1.0
 */
export * as DispatchPolicy from "./DispatchPolicy.ts"
export * as Operation from "./Operation.ts"
/**
 * The metrics a pool reports through Effect's `Metric`: their names, types and attributes.
 *
 * @since 0.2.0
 */
export * as PoolMetrics from "./PoolMetrics.ts"
/**
 * The wire of the out-of-process kinds: messages as schemas, the line codec.
 *
 * @since 0.1.0
 */
export * as Protocol from "./Protocol.ts"
/**
 * The child side of the out-of-process kinds: `run` a handler in a worker script.
 *
 * @since 0.1.0
 */
export * as Runner from "./Runner.ts"
/**
 * The pool of one worker script, in threads or subprocesses: `make`, and
 * `Service` for a service key with its layer.
 *
 * @since 0.2.0
 */
export * as ScriptPool from "./ScriptPool.ts"
/**
 * Subprocess workers: a child process speaking JSON lines over stdin and stdout.
 *
 * @since 0.1.0
 */
export * as Subprocess from "./Subprocess.ts"
/**
 * Thread workers: a `worker_threads` Worker, messages by structured clone.
 *
 * @since 0.1.0
 */
export * as Thread from "./Thread.ts"
export { InvalidRequest } from "./WireError.ts"
/**
 * Workers: `make`, `makeScoped`, `fromKind`, and their restart schedule.
 *
 * @since 0.1.0
 */
export * as Worker from "./Worker.ts"
export {
  CancelIgnored,
  ConnectionLost,
  CrashReason,
  Defect,
  DomainError,
  DuplicateWorkerId,
  Exited,
  InvalidOptions,
  Killed,
  NoWorker,
  PoolBusy,
  PoolShutdown,
  ProtocolFault,
  QueueTimeout,
  Reported,
  RequestTimeout,
  StartFailed,
  Stopped,
  TimedOut,
  Unavailable,
  UnknownWorkerId,
  Unresponsive,
  WorkerCrash
} from "./WorkerError.ts"
export { LastCrash, LastRecycle, WorkerHealth, WorkerState } from "./WorkerHealth.ts"
export { WorkerId } from "./WorkerId.ts"
/**
 * The seam for isolation kinds, and the in-process kind.
 *
 * @since 0.1.0
 */
export * as WorkerKind from "./WorkerKind.ts"
/**
 * The pool: `make` and `layer`.
 *
 * @since 0.1.0
 */
export * as WorkerPool from "./WorkerPool.ts"
