/**
 * The entry for tests: `import { Testing } from "effect-worker-pool/testing"`.
 * It holds the test kit (scripted fake workers, health builders, generators
 * for property tests, a command runner and invariant checks) and is never
 * loaded by the pool itself.
 *
 * @since 0.2.0
 */

/**
 * The test kit: fake workers, builders, generators, a runner and checks.
 *
 * @since 0.2.0
 */
export * as Testing from "./Testing.ts"
