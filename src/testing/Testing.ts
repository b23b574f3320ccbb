/**
 * A kit for testing code that runs on a pool, and dispatch policies of your
 * own:
 *
 * - **scripted fake workers** ({@link fakeKind}, {@link fakeWorker}): each
 *   request succeeds, fails with a domain error, crashes its worker, dies,
 *   hangs, answers late on Effect's `Clock`, or waits for a cue, as the
 *   request itself says or as a {@link Script} says; the first starts can be
 *   made to fail;
 * - **builders** of health records and policy views ({@link health},
 *   {@link candidate}, {@link view});
 * - **generators** for property tests, as Schemas that `it.prop` and
 *   `it.effect.prop` of `@effect/vitest` (or `Arbitrary.schema`) take:
 *   views of candidates ({@link candidates}) and command sequences
 *   ({@link Commands}), with a runner that plays commands against a real pool
 *   in virtual time ({@link runCommands});
 * - **invariant checks** ({@link checkOutcomes}, {@link checkHealth},
 *   {@link checkTotals}, {@link checkRun}): every request has one outcome,
 *   the counters add up, and they match what the callers saw.
 *
 * Each idea is a module of its own (`behaviours.ts`, `fakes.ts`,
 * `builders.ts`, `generators.ts`, `model.ts`, `checks.ts`); this one gathers
 * them into the one namespace. Import it from `effect-worker-pool/testing`.
 * It depends on `effect` only.
 *
 * @since 0.2.0
 */
export * from "./behaviours.ts"
export * from "./builders.ts"
export * from "./checks.ts"
export * from "./fakes.ts"
export * from "./generators.ts"
export * from "./model.ts"
