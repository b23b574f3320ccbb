/**
 * Zero-copy buffers for the thread kind: the fields of a payload whose
 * schema is an `effect/workers` `Transferable` (such as
 * `Transferable.Uint8Array`) move through `postMessage`'s transfer list
 * instead of being copied by structured clone.
 *
 * Encoding collects them (`movingEncoding`: the schema's own encode step
 * reports them to a `Transferable.Collector`, in the same walk): a payload
 * that reports any becomes a `Moving` box, its encoded value and its
 * buffers. The box travels as the payload through whatever holds the
 * message until it is posted (the client's queue, the batcher), so a
 * request still waiting keeps its buffer; only the post opens it
 * (`postBatch`). A buffer that is detached by then (it moved with an earlier
 * post) cannot be sent again: its message is refused, with a reason that
 * says so. A buffer that cannot move (a `SharedArrayBuffer`, a pooled Node
 * `Buffer`'s slab) is copied, as without the schema.
 */
import { isMarkedAsUntransferable, type Transferable as Movable } from "node:worker_threads"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Schema from "effect/Schema"
import * as Transferable from "effect/workers/Transferable"
import type { Codec, Conversion } from "./codec.ts"
import { describe } from "./describe.ts"

/** An encoded payload and the buffers (or ports) it moves when it is posted. */
export class Moving {
  readonly value: unknown
  readonly transfer: ReadonlyArray<Movable>
  constructor(value: unknown, transfer: ReadonlyArray<Movable>) {
    this.value = value
    this.transfer = transfer
  }
}

/**
 * Encoding with `schema`, collecting what its `Transferable` fields report:
 * a payload with any is a {@link Moving} box, one without is the encoded
 * value, as `encoding` gives it.
 */
export const movingEncoding = <A>(schema: Codec<A>): Conversion<unknown> => {
  const encode = Schema.encodeUnknownEffect(schema)
  // One collector for the synchronous runs: each run empties it before the next one starts.
  const collector = Transferable.makeCollectorUnsafe()
  const runSync = Effect.runSyncExitWith(Context.make(Transferable.Collector, collector))
  const boxed = (value: unknown, found: Transferable.Collector["Service"]) =>
    found.readUnsafe().length === 0 ? value : new Moving(value, found.clearUnsafe())
  return {
    run: (value) => {
      const exit = runSync(encode(value))
      if (collector.readUnsafe().length === 0) return exit
      const moved = collector.clearUnsafe()
      return Exit.isSuccess(exit) ? Exit.succeed(new Moving(exit.value, moved)) : exit
    },
    effect: (value) =>
      Effect.suspend(() => {
        const own = Transferable.makeCollectorUnsafe()
        return encode(value).pipe(
          Effect.provideService(Transferable.Collector, own),
          Effect.map((encoded) => boxed(encoded, own))
        )
      })
  }
}

/** Why a message that moves `transfer` cannot be posted; otherwise adds what can move to `into`. */
const collect = (transfer: ReadonlyArray<Movable>, into: Set<Movable>): string | undefined => {
  for (const item of transfer) {
    if (item instanceof ArrayBuffer) {
      if ((item as { readonly detached?: boolean }).detached === true) {
        return "holds a detached buffer: it was transferred by an earlier send, and a transferred buffer is sent once (a retry cannot send it again)"
      }
      // Node's pooled buffers cannot move: they are copied.
      if (isMarkedAsUntransferable(item)) continue
    } else if (typeof SharedArrayBuffer !== "undefined" && item instanceof SharedArrayBuffer) {
      // Shared already: structured clone shares it.
      continue
    }
    into.add(item)
  }
  return undefined
}

/** Where a message's payload is, for {@link postBatch}. */
export interface Payloads<M> {
  /** The payload of `message` that may be a box, if it has one. */
  readonly of: (message: M) => unknown
  /** `message` with `value` in place of its payload. */
  readonly with: (message: M, value: unknown) => M
}

/**
 * Posts a batch in one `post`, with the buffers its boxes move as the
 * transfer list. `refuse` gets the messages that cannot go, with why (in
 * words that follow "the request" or "the response"): a detached buffer, or
 * a value that cannot be cloned, found when the batch fails and each message
 * is then posted on its own. A batch without a box is posted as it is.
 */
export const postBatch = <M>(
  batch: ReadonlyArray<M>,
  payloads: Payloads<M>,
  post: (batch: ReadonlyArray<M>, transfer: ReadonlyArray<Movable> | undefined) => void,
  refuse: (message: M, why: string) => void
): void => {
  let plain: ReadonlyArray<M> = batch
  let moves: Array<ReadonlyArray<Movable> | undefined> | undefined
  let transfer: Set<Movable> | undefined
  for (let i = 0; i < batch.length; i++) {
    if (!(payloads.of(batch[i]!) instanceof Moving)) continue
    // A box: the batch is rebuilt, its payloads opened and its transfer list gathered.
    const open: Array<M> = batch.slice(0, i)
    moves = open.map(() => undefined)
    transfer = new Set()
    for (let j = i; j < batch.length; j++) {
      const message = batch[j]!
      const payload = payloads.of(message)
      if (!(payload instanceof Moving)) {
        open.push(message)
        moves.push(undefined)
        continue
      }
      const why = collect(payload.transfer, transfer)
      if (why !== undefined) {
        refuse(message, why)
        continue
      }
      open.push(payloads.with(message, payload.value))
      moves.push(payload.transfer)
    }
    plain = open
    break
  }
  if (plain.length === 0) return
  try {
    post(plain, transfer === undefined ? undefined : [...transfer])
  } catch {
    // One of them cannot be cloned: each on its own. A failed post moves nothing.
    for (let i = 0; i < plain.length; i++) {
      const message = plain[i]!
      const own = moves?.[i]
      const ownTransfer = own === undefined ? undefined : new Set<Movable>()
      const why = own === undefined ? undefined : collect(own, ownTransfer!)
      if (why !== undefined) {
        refuse(message, why)
        continue
      }
      try {
        post([message], ownTransfer === undefined ? undefined : [...ownTransfer])
      } catch (error) {
        refuse(message, `cannot be cloned: ${describe(error)}`)
      }
    }
  }
}
