/**
 * The shape of the source tree's imports: no module imports itself back at
 * run time (no cycle, however long), and an import of types only goes back
 * up the tree only where an internal module implements the interface a
 * public module declares (Effect's own convention): the pool's engine makes
 * the `WorkerPool`, the supervisor the `Worker`, the roster (and the view
 * builder of the test kit) the policies' `WorkerView`. The main entry never loads the test kit.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"

const src = fileURLToPath(new URL("../src", import.meta.url))

interface Edge {
  readonly from: string
  readonly to: string
  /** `import type`, or braces whose every name is `type X`. */
  readonly typeOnly: boolean
}

/** The relative imports and re-exports of every module under `src/`. */
const edges = (): ReadonlyArray<Edge> => {
  const statement =
    /^\s*(?:import|export)\s+(type\s+)?((?:(?!\b(?:import|export)\b)[^;])*?)\s+from\s+["'](\.[^"']+)["']/gm
  const out: Array<Edge> = []
  for (const file of fs.readdirSync(src, { recursive: true }) as Array<string>) {
    if (!file.endsWith(".ts")) continue
    const code = fs.readFileSync(path.join(src, file), "utf8")
    for (const match of code.matchAll(statement)) {
      const [, typeKeyword, clause, specifier] = match
      const names = /^\{([\s\S]*)\}$/
        .exec(clause!.trim())?.[1]
        ?.split(",")
        .map((name) => name.trim())
        .filter(Boolean)
      const typeOnly = typeKeyword !== undefined || names?.every((n) => n.startsWith("type ")) === true
      const to = path.relative(src, path.resolve(path.dirname(path.join(src, file)), specifier!))
      out.push({ from: file, to, typeOnly })
    }
  }
  return out
}

/** Whether `to` can be reached from `from` along run-time imports. */
const reaches = (graph: ReadonlyMap<string, ReadonlyArray<string>>, from: string, to: string): boolean => {
  const seen = new Set<string>()
  const stack = [from]
  while (stack.length > 0) {
    const node = stack.pop()!
    if (node === to) return true
    if (seen.has(node)) continue
    seen.add(node)
    stack.push(...(graph.get(node) ?? []))
  }
  return false
}

const runtimeGraph = (all: ReadonlyArray<Edge>) => {
  const graph = new Map<string, Array<string>>()
  for (const edge of all) {
    if (edge.typeOnly) continue
    graph.set(edge.from, [...(graph.get(edge.from) ?? []), edge.to])
  }
  return graph
}

/** The type-only imports back up the tree that are allowed: each an interface implemented internally. */
const implemented = new Map([
  ["internal/pool.ts -> WorkerPool.ts", "the engine makes the WorkerPool"],
  ["internal/supervisor.ts -> Worker.ts", "the supervisor makes the Worker"],
  ["internal/roster.ts -> DispatchPolicy.ts", "the roster implements the WorkerView"],
  ["internal/view.ts -> DispatchPolicy.ts", "the view builder makes a WorkerView"],
  ["internal/invocation.ts -> Runner.ts", "the invocation calls a Runner.Handler and makes its context"]
])

describe("imports", () => {
  const all = edges()
  const graph = runtimeGraph(all)

  it("finds the imports it checks", () => {
    assert.isAbove(all.length, 100)
    assert.isTrue(all.some((edge) => edge.from === "WorkerPool.ts" && edge.to === "internal/pool.ts" && !edge.typeOnly))
  })

  it("no run-time import cycle", () => {
    const cycles = all.filter((edge) => !edge.typeOnly && reaches(graph, edge.to, edge.from))
    assert.deepStrictEqual(
      cycles.map((edge) => `${edge.from} -> ${edge.to}`),
      []
    )
  })

  it("a type-only import goes back up the tree only where an internal module implements a public interface", () => {
    const back = all
      .filter((edge) => edge.typeOnly && reaches(graph, edge.to, edge.from))
      .map((edge) => `${edge.from} -> ${edge.to}`)
    assert.deepStrictEqual([...new Set(back)].sort(), [...implemented.keys()].sort())
  })

  it("the library's entries never load the test kit", () => {
    for (const entry of ["index.ts", "child.ts", "remote/index.ts"]) {
      assert.isFalse(reaches(graph, entry, "testing/index.ts"), `${entry} loads the test kit`)
    }
  })
})
