/**
 * The examples of the documentation must compile and run.
 *
 * Every ```ts block of README.md and docs/**\/*.md, and every ```ts block of
 * the JSDoc comments in src/**\/*.ts, is written to a file of its own under
 * test/.examples/ (gitignored), one directory per source file. One run of the
 * project's tsc typechecks them all. Then each markdown block is run as a
 * program with the project's Node: it must exit with code 0 and print
 * something. JSDoc blocks are typechecked only.
 *
 * A markdown block is typechecked but not run when its fence carries a flag:
 * ```ts no-run for a fragment, ```ts signature for the signature of an API
 * entry, and ```ts file=NAME.ts for a file the other examples of the page use
 * (a worker script), written as NAME.ts next to them. A ```text output block
 * right after a ts block is what the program must print; the lines of Effect's
 * logger, which carry a time and a fiber id, are left out of the comparison.
 *
 * "effect-worker-pool" resolves to src/index.ts through the "effect-worker-pool-source" condition
 * of the package's exports, for tsc (customConditions) and for Node
 * (--conditions=effect-worker-pool-source) alike.
 */
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { beforeAll, describe, expect, it } from "vitest"
import {
  anchorsOf,
  type Example,
  extractAll,
  fileNameOf,
  filesUnder,
  fromJsDoc,
  fromMarkdown,
  linksOf,
  withoutLogLines
} from "./examples/extract.ts"

const root = fileURLToPath(new URL("..", import.meta.url))
const outDir = path.join(root, "test", ".examples")
const nodeCache = ".node-cache"
const tsc = path.join(root, "node_modules", ".bin", "tsc")
/** How long one example may run before it is killed. */
const runTimeoutMs = 40_000

/** Node runs TypeScript by stripping types from 22.18 (and 23.6) on. */
const stripsTypes = (version: string): boolean => {
  const [major = 0, minor = 0] = version.replace(/^v/, "").split(".").map(Number)
  return major > 23 || (major === 23 && minor >= 6) || (major === 22 && minor >= 18)
}
const node = stripsTypes(process.version) ? process.execPath : path.join(root, "node_modules", ".bin", "node")

interface Outcome {
  readonly code: number | null
  readonly signal: string | null
  readonly stdout: string
  readonly stderr: string
  readonly ms: number
}

const exec = (file: string, args: ReadonlyArray<string>, timeout: number): Promise<Outcome> =>
  new Promise((resolve) => {
    const started = Date.now()
    execFile(
      file,
      args,
      {
        cwd: root,
        timeout,
        maxBuffer: 16 * 1024 * 1024,
        env: { ...process.env, NO_COLOR: "1", NODE_COMPILE_CACHE: path.join(outDir, nodeCache) }
      },
      (error, stdout, stderr) => {
        const failed = error as (Error & { code?: unknown; signal?: NodeJS.Signals | null }) | null
        resolve({
          code: failed === null ? 0 : typeof failed.code === "number" ? failed.code : null,
          signal: failed?.signal ?? null,
          stdout,
          stderr: failed !== null && typeof failed.code !== "number" ? `${stderr}\n${failed.message}` : stderr,
          ms: Date.now() - started
        })
      }
    )
  })

/** Runs `tasks` with at most `limit` of them at a time; each promise settles with its own task. */
const limited = <A>(tasks: ReadonlyArray<() => Promise<A>>, limit: number): Array<Promise<A>> => {
  let active = 0
  const queue: Array<() => void> = []
  const next = () => {
    active--
    queue.shift()?.()
  }
  return tasks.map(
    (task) =>
      new Promise<A>((resolve, reject) => {
        const start = () => {
          active++
          task().then(resolve, reject).finally(next)
        }
        if (active < limit) start()
        else queue.push(start)
      })
  )
}

const { examples, problems } = extractAll(root)
const nameOf = (example: Example) => `${example.file}:${example.line}`
const fileOf = (example: Example) => path.join(outDir, fileNameOf(example))
const runnable = examples.filter((e) => e.run)

/** tsc's diagnostics, by absolute file name ("" for those without a file). */
let diagnostics: Map<string, Array<string>>
let runs: Map<Example, Promise<Outcome>>

const parseDiagnostics = (output: string): Map<string, Array<string>> => {
  const byFile = new Map<string, Array<string>>()
  let last: Array<string> | undefined
  for (const line of output.split(/\r?\n/)) {
    if (line.trim() === "") continue
    const located = /^(.+?)\((\d+),(\d+)\): (error|warning) (TS\d+: .*)$/.exec(line)
    if (located !== null) {
      const [, file, l, c, , message] = located
      const key = path.resolve(root, file!)
      last = byFile.get(key) ?? []
      byFile.set(key, last)
      last.push(`(${l},${c}) ${message}`)
    } else if (last !== undefined && /^\s/.test(line)) {
      last.push(line)
    } else {
      last = byFile.get("") ?? []
      byFile.set("", last)
      last.push(line)
    }
  }
  return byFile
}

/** Where a diagnostic of a generated file points in the documentation. */
const located = (example: Example, diagnostic: string): string =>
  diagnostic.replace(/^\((\d+),(\d+)\)/, (_, l: string) => `${example.file}:${example.line + Number(l) - 1}`)

beforeAll(async () => {
  // Start afresh, but keep Node's compile cache, which makes each run faster.
  fs.mkdirSync(outDir, { recursive: true })
  for (const entry of fs.readdirSync(outDir)) {
    if (entry !== nodeCache) fs.rmSync(path.join(outDir, entry), { recursive: true, force: true })
  }
  for (const example of examples) {
    fs.mkdirSync(path.dirname(fileOf(example)), { recursive: true })
    // `export {}` keeps a block that imports nothing a module of its own.
    fs.writeFileSync(fileOf(example), example.name === undefined ? `${example.code}export {}\n` : example.code)
  }
  fs.writeFileSync(
    path.join(outDir, "tsconfig.json"),
    JSON.stringify(
      {
        extends: "../../tsconfig.json",
        // Examples declare values only to show them.
        compilerOptions: { noUnusedLocals: false, noUnusedParameters: false, noEmit: true },
        include: [],
        files: examples.map(fileNameOf)
      },
      null,
      2
    )
  )

  // One example per CPU at a time. Many start threads or processes, which must be ready within their
  // startTimeout (10 s by default); more examples at once than CPUs, on a machine busy with other work,
  // starved them past it.
  const concurrency = os.availableParallelism()
  const tasks = runnable.map(
    (example) => () => exec(node, ["--conditions=effect-worker-pool-source", fileOf(example)], runTimeoutMs)
  )
  const outcomes = limited(tasks, concurrency)
  runs = new Map(runnable.map((example, i) => [example, outcomes[i]!]))

  const checked = await exec(node, [tsc, "-p", path.join(outDir, "tsconfig.json"), "--pretty", "false"], 120_000)
  diagnostics = parseDiagnostics(`${checked.stdout}\n${checked.stderr}`)
  if (checked.code !== 0 && diagnostics.size === 0) {
    throw new Error(`tsc failed without diagnostics (exit ${checked.code}):\n${checked.stdout}\n${checked.stderr}`)
  }
}, 180_000)

describe("documentation examples", () => {
  it("are found, and every fenced block is well formed", () => {
    expect(problems.map((p) => `${p.file}:${p.line}: ${p.message}`)).toEqual([])
    expect(examples.some((e) => e.file === "README.md" && e.run)).toBe(true)
    expect(examples.some((e) => e.file.startsWith("docs/") && e.run)).toBe(true)
    expect(examples.some((e) => e.source === "jsdoc")).toBe(true)
  })

  it("leave tsc nothing to report outside the examples", () => {
    const own = new Set(examples.map(fileOf))
    const elsewhere = [...diagnostics].filter(([file]) => !own.has(file))
    expect(elsewhere.map(([file, messages]) => `${path.relative(root, file)}\n${messages.join("\n")}`)).toEqual([])
  })

  describe("typecheck", () => {
    for (const example of examples) {
      it(`${nameOf(example)} (${example.source})`, () => {
        const messages = diagnostics.get(fileOf(example)) ?? []
        if (messages.length > 0) {
          expect.fail(
            `tsc: ${messages.map((m) => located(example, m)).join("\n")}\n(${path.relative(root, fileOf(example))})`
          )
        }
      })
    }
  })

  describe("run", () => {
    for (const example of runnable) {
      it(
        nameOf(example),
        async () => {
          const outcome = await runs.get(example)!
          const report = [
            `${nameOf(example)} exited with ${outcome.signal ?? outcome.code} after ${outcome.ms} ms`,
            `program: ${path.relative(root, fileOf(example))}`,
            `--- stdout\n${outcome.stdout}`,
            `--- stderr\n${outcome.stderr}`
          ].join("\n")
          expect(outcome.code, report).toBe(0)
          expect(outcome.stdout.trim(), `${nameOf(example)} printed nothing`).not.toBe("")
          if (example.expectedOutput !== undefined) {
            const printed = withoutLogLines(outcome.stdout).trimEnd()
            expect(printed, `${nameOf(example)}: the output block after it`).toBe(example.expectedOutput.trimEnd())
          }
        },
        runTimeoutMs * 4
      )
    }
  })

  it("link to files and headings that exist", () => {
    const broken: Array<string> = []
    for (const file of ["README.md", ...filesUnder(root, "docs", ".md")]) {
      const text = fs.readFileSync(path.join(root, file), "utf8")
      for (const { line, target } of linksOf(text)) {
        const [targetPath = "", anchor] = target.split("#")
        const linked =
          targetPath === "" ? file : path.posix.normalize(path.posix.join(path.posix.dirname(file), targetPath))
        const absolute = path.join(root, linked)
        if (!fs.existsSync(absolute)) {
          broken.push(`${file}:${line}: ${target} (no such file)`)
          continue
        }
        if (anchor !== undefined && linked.endsWith(".md")) {
          if (!anchorsOf(fs.readFileSync(absolute, "utf8")).has(anchor)) {
            broken.push(`${file}:${line}: ${target} (no such heading)`)
          }
        }
      }
    }
    expect(broken).toEqual([])
  })
})

describe("example extraction", () => {
  it("reads ts blocks, their flags and their output blocks from markdown", () => {
    const md = [
      "# Title",
      "",
      "```ts",
      'console.log("a")',
      "```",
      "",
      "```text output",
      "a",
      "```",
      "",
      "- a list",
      "  ```ts no-run",
      "  declare const x: number",
      "  ```",
      "",
      "```ts signature",
      "const f: () => void = g",
      "```",
      "",
      "```ts file=worker.ts",
      "run()",
      "```",
      "",
      "```sh",
      "npm test",
      "```"
    ].join("\n")
    const { examples: found, problems: none } = fromMarkdown("x.md", md)
    expect(none).toEqual([])
    expect(found.map((e) => [e.line, e.run, e.code, e.expectedOutput, fileNameOf(e)])).toEqual([
      [4, true, 'console.log("a")\n', "a\n", "x.md/L4.ts"],
      [13, false, "declare const x: number\n", undefined, "x.md/L13.ts"],
      [17, false, "const f: () => void = g\n", undefined, "x.md/L17.ts"],
      [21, false, "run()\n", undefined, "x.md/worker.ts"]
    ])
  })

  it("reports an unknown flag, and two blocks with the same name", () => {
    const { problems: found } = fromMarkdown(
      "x.md",
      "```ts norun\na\n```\n```ts file=w.ts\nb\n```\n```ts file=w.ts\nc\n```\n"
    )
    expect(found).toEqual([
      { file: "x.md", line: 1, message: 'unknown flag "norun" on a ts fence' },
      { file: "x.md", line: 7, message: "a second block is named w.ts" }
    ])
  })

  it("reports a block that is never closed", () => {
    const { problems: found } = fromMarkdown("x.md", "text\n\n```ts\nconst a = 1\n")
    expect(found).toEqual([{ file: "x.md", line: 3, message: "this fenced block is never closed" }])
  })

  it("reads ts blocks from JSDoc comments, with their lines", () => {
    const ts = [
      "/**",
      " * Doubles.",
      " *",
      " * @example",
      " * ```ts",
      ' * import { Effect } from "effect"',
      " *",
      " *   const x = Effect.succeed(1)",
      " * ```",
      " */",
      "export const a = 1"
    ].join("\n")
    const found = fromJsDoc("src/A.ts", ts).examples
    expect(found.map((e) => [e.line, e.run, e.code])).toEqual([
      [6, false, 'import { Effect } from "effect"\n\n  const x = Effect.succeed(1)\n']
    ])
  })

  it("leaves the lines of Effect's logger out of a program's output", () => {
    const stdout = [
      "42",
      "[02:36:40.104] WARN (#15): worker crashed {",
      "  workerId: 4,",
      "  reason: 'boom'",
      "}",
      "[02:36:40.106] INFO (#15): worker restarting { workerId: 4, workerKind: 'in-process' }",
      "done",
      ""
    ].join("\n")
    expect(withoutLogLines(stdout)).toBe("42\ndone\n")
  })
})
