/**
 * The entry for worker scripts: `import { DomainError, Runner } from
 * "effect-worker-pool/child"`. It holds what a child needs (the runner and
 * the errors a handler raises) and nothing of the pool, so that a child
 * starts without loading the pool, the dispatch policies or the kinds.
 *
 * @since 0.1.0
 */

/**
 * The child side of the out-of-process kinds: `run` a handler in a worker script.
 *
 * @since 0.1.0
 */
export * as Runner from "./Runner.ts"
export { DomainError, WorkerCrash } from "./WorkerError.ts"
