/**
 * The entry for remote workers: `import { Remote } from
 * "effect-worker-pool/remote"`. It needs `@effect/platform-node` (its
 * sockets), which the main entry does not load.
 *
 * @since 0.2.0
 */

/**
 * Workers on other machines: the remote kind, its runner, and pools of them.
 *
 * @since 0.2.0
 */
export * as Remote from "../Remote.ts"

/**
 * The metrics a runner reports through Effect's `Metric`.
 *
 * @since 0.3.0
 */
export * as RemoteMetrics from "../RemoteMetrics.ts"
