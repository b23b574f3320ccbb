/**
 * How the span of a traced dispatch reaches the worker that runs the
 * request: as the parent span of an in-process handler, and as the trace
 * context an out-of-process request carries to its child (see
 * `Protocol.TraceContext`), whose runner runs the handler under it.
 *
 * A request reaches an incarnation in one of two ways. `run` is an effect,
 * and the span rides in its context (`DispatchSpan`). `submit` is a plain
 * call, made by whichever fiber freed the slot: the span is its argument.
 */
import { Context, Effect, Tracer } from "effect"
import type { TraceContext } from "../Protocol.ts"

/** The span of the dispatch a request runs for, in the context of `Incarnation.run`. */
export const DispatchSpan = Context.Reference<Tracer.AnySpan | undefined>("effect-worker-pool/DispatchSpan", {
  defaultValue: () => undefined
})

/** `effect` (a request's run) under `span`: its parent span, and the span its request carries. */
export const withDispatchSpan = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  span: Tracer.AnySpan
): Effect.Effect<A, E, R> =>
  Effect.updateContext(
    effect,
    (context: Context.Context<never>) =>
      Context.add(Context.add(context, Tracer.ParentSpan, span), DispatchSpan, span) as Context.Context<any>
  )

/** The trace context of `span`, as a request carries it over the wire. */
export const traceContext = (span: Tracer.AnySpan): TraceContext => ({
  traceId: span.traceId,
  spanId: span.spanId,
  sampled: span.sampled
})
