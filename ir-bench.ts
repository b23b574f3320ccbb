import { Effect, Scope, Exit, Pool } from "effect"
const which = process.argv[2]!
const n = Number(process.argv[3])
const lib: any = which === "old" ? await import("/work/wt-old/src/index.ts") : which === "new" ? await import("/work/main/src/index.ts") : undefined
const handler = (x: number) => Effect.sync(() => x + 1)
const scope = Scope.makeUnsafe()
const one: (x: number) => Effect.Effect<any, any> = which === "use"
  ? await Effect.runPromise(Pool.make({ acquire: Effect.succeed(handler), size: 4 }).pipe(Scope.provide(scope), Effect.map((p: any) => (x: number) => Pool.use(p, (h: any) => h(x)))))
  : which === "bare" ? handler
  : await Effect.runPromise(lib.WorkerPool.make({ size: 4, worker: (id: any) => lib.Worker.make(id, handler) }).pipe(Scope.provide(scope), Effect.map((p: any) => (x: number) => p.dispatch(x))))
const loop = (k: number) => Effect.runPromise(Effect.gen(function* () { for (let i = 0; i < k; i++) yield* one(i) }))
for (let i = 0; i < 20; i++) await loop(2000)
await loop(n)
