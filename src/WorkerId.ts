/**
 * Stable identifiers for the workers of a pool.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * The schema of a worker identifier: a non-negative integer, branded so that it
 * cannot be mixed up with a count or an index. A worker keeps its id across
 * restarts, and the pool reports health sorted by id.
 *
 * @example
 * ```ts
 * import { WorkerId } from "effect-worker-pool"
 *
 * const id: WorkerId = WorkerId.make(7)
 * console.log(id) // 7
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const WorkerId = Schema.Natural.pipe(Schema.brand("WorkerId"))

/**
 * A worker identifier (see the {@link WorkerId} schema).
 *
 * @since 0.1.0
 * @category models
 */
export type WorkerId = typeof WorkerId.Type
