/**
 * The catalogue: every behaviour of a worker, a caller, a policy or the
 * pool's owner that the fuzzer plays, by name. A plan is drawn from it (see
 * `plan.ts`); `npm run fuzz -- --list` prints it; `--only` narrows a run to
 * some of its entries or targets.
 */

/**
 * Where a plan runs: in-process workers of one slot, requests on their
 * callers' fibers (no timeout); in-process workers with a timeout (requests
 * on fibers of their own) or several slots (without a timeout, several
 * requests on their callers' fibers at once), both in virtual time; threads
 * and subprocesses in real time.
 */
export const targets = ["caller", "fiber", "thread", "subprocess"] as const

export type Target = (typeof targets)[number]

/** Whether a target runs in process, in virtual time. */
export const inProcess = (target: Target): boolean => target === "caller" || target === "fiber"

/** Who does what a behaviour names. */
export type Group = "worker" | "wire" | "caller" | "queue" | "policy" | "pool"

/** One entry of the catalogue. */
export interface Entry {
  readonly name: string
  readonly group: Group
  readonly targets: ReadonlyArray<Target>
  readonly description: string
}

const all = targets
const inProc = ["caller", "fiber"] as const
const outOfProcess = ["thread", "subprocess"] as const

const entry = (name: string, group: Group, on: ReadonlyArray<Target>, description: string): Entry => ({
  name,
  group,
  targets: on,
  description
})

/** Every behaviour, in the order `--list` prints them. */
export const catalogue: ReadonlyArray<Entry> = [
  entry("success", "worker", all, "the handler answers at once"),
  entry("domain-error", "worker", all, "the handler fails with a DomainError: a bad request, the worker stays up"),
  entry("worker-crash", "worker", all, "the handler fails with WorkerCrash: the worker is restarted"),
  entry("die", "worker", all, "the handler dies (Effect.die)"),
  entry("sync-throw", "worker", all, "the handler throws before it returns an Effect"),
  entry("throwing-constructor", "worker", all, "the handler builds an error whose constructor throws (a Schema check)"),
  entry("non-effect-value", "worker", inProc, "the handler returns a plain value, not an Effect"),
  entry("non-effect-promise", "worker", inProc, "the handler returns a Promise, not an Effect"),
  entry("non-effect-undefined", "worker", inProc, "the handler returns undefined"),
  entry("rejected-promise", "worker", all, "the handler runs Effect.promise on a promise that rejects"),
  entry("self-interrupt", "worker", all, "the handler interrupts itself"),
  entry("throw-in-sync", "worker", all, "the handler throws inside Effect.sync (a defect, the documented case)"),
  entry(
    "slow-answer",
    "worker",
    all,
    "the handler answers after a delay (virtual, or real for threads and subprocesses)"
  ),
  entry("slow-domain-error", "worker", all, "the handler fails with a DomainError after a delay"),
  entry("slow-crash", "worker", all, "the handler crashes after a delay, taking the requests beside it down"),
  entry("hang", "worker", all, "the handler never answers (it can be interrupted)"),
  entry("slow-cancel", "worker", inProc, "the handler never answers, and its interruption takes a while"),
  entry("ignore-cancel", "worker", outOfProcess, "the child ignores the cancel of its request (CancelIgnored)"),
  entry("process-exit", "worker", outOfProcess, "the thread or process exits in the middle of the request"),
  entry("answer-then-exit", "worker", outOfProcess, "the child answers, then exits"),
  entry("kill", "worker", ["subprocess"], "a worker process is killed with SIGKILL from outside"),
  entry("bad-response", "wire", outOfProcess, "the child answers with a response the parent cannot decode"),
  entry("oversized-request", "wire", ["subprocess"], "the request is over the subprocess's maxLineBytes"),
  entry("encode-failure", "wire", outOfProcess, "the request Schema cannot encode the request"),
  entry("uncloneable-request", "wire", ["thread"], "the request cannot be cloned to the thread"),
  entry("dead-client", "wire", all, "requests sent right behind one that brings its incarnation down"),
  entry("request-timeout", "caller", all, "the request has a timeout, which a slow or hanging request meets"),
  entry("queue-timeout", "caller", all, "the request has a short queue timeout"),
  entry("timeout-at-slot-free", "caller", inProc, "a queue timeout ends in the same instant a slot frees"),
  entry("interrupt-queued", "caller", all, "the caller is interrupted while its request waits in the queue"),
  entry("interrupt-served", "caller", all, "the caller is interrupted just after its request was served a slot"),
  entry("interrupt-running", "caller", all, "the caller is interrupted while its request runs"),
  entry("interrupt-cancelling", "caller", all, "the caller is interrupted while its request's cancel is under way"),
  entry("idempotent", "caller", all, "the request is idempotent: retried on another worker after a WorkerCrash"),
  entry("direct-dispatch", "caller", inProc, "Worker.dispatch on a worker outside any pool"),
  entry("queue-fail", "queue", all, "a small queue whose strategy is fail: a full queue refuses (PoolBusy)"),
  entry("queue-drop-oldest", "queue", all, "a small queue whose strategy is dropOldest"),
  entry("queue-suspend", "queue", all, "a small queue whose strategy is suspend: callers wait for room"),
  entry("policy-throws", "policy", all, "the dispatch policy throws for the request"),
  entry("policy-undefined", "policy", all, "the dispatch policy returns undefined (wait) for the request, a few times"),
  entry("policy-outside-view", "policy", all, "the dispatch policy picks a worker it was not offered"),
  entry(
    "policy-learn-throws",
    "policy",
    all,
    "the dispatch policy throws from onResult, each time it is told a result"
  ),
  entry("add", "pool", all, "a worker is added mid-run"),
  entry("remove", "pool", all, "a worker is removed mid-run"),
  entry("shutdown-mid-run", "pool", all, "the pool's scope closes while requests run and wait; more come after")
]

/** The entry of each name. */
export const entries: ReadonlyMap<string, Entry> = new Map(catalogue.map((e) => [e.name, e]))

/** The lines of `--list`. */
export const listing = (): Array<string> => {
  const width = Math.max(...catalogue.map((e) => e.name.length))
  return [
    `targets: ${targets.join(", ")}`,
    `${catalogue.length} behaviours:`,
    ...catalogue.map(
      (e) => `  ${e.name.padEnd(width)}  ${e.group.padEnd(6)}  ${e.targets.join(",").padEnd(27)}  ${e.description}`
    )
  ]
}
