/**
 * The demo with remote workers, as `npm start -- --kind remote` runs it: it
 * starts a runner process per worker on loopback, sends its load through
 * them (a runner that exits is started again on its port), and accounts for
 * every request.
 */
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"

const projectRoot = fileURLToPath(new URL("..", import.meta.url))

const runDemo = (...args: ReadonlyArray<string>): Promise<{ code: number | null; stdout: string }> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--conditions=effect-worker-pool-source", "examples/demo.ts", ...args], {
      cwd: projectRoot,
      stdio: ["ignore", "pipe", "inherit"]
    })
    let stdout = ""
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk
    })
    child.on("error", reject)
    child.on("close", (code) => resolve({ code, stdout }))
  })

describe("demo --kind remote", { timeout: 60_000 }, () => {
  it("runs its load through runner processes and loses no request", async () => {
    const run = await runDemo("--kind", "remote", "--workers", "3", "--duration", "1", "--crash-rate", "0.02")
    expect(run.code).toBe(0)
    expect(run.stdout).toContain("3 remote workers")
    expect(run.stdout).toMatch(/id\s+state\s+in-flight\s+limit\s+completed\s+errored\s+crashes\s+restarts/)
    for (const id of [0, 1, 2]) expect(run.stdout).toMatch(new RegExp(`^${id}\\s+[A-Z][a-z]+\\s`, "m"))
    const summary =
      /requests (?<requests>\d+), succeeded (?<succeeded>\d+), domain errors (?<domain>\d+), crashed (?<crashed>\d+), lost (?<lost>-?\d+)/.exec(
        run.stdout
      )?.groups
    expect(summary).toBeDefined()
    expect(Number(summary!.lost)).toBe(0)
    expect(Number(summary!.succeeded)).toBeGreaterThan(0)
    expect(Number(summary!.succeeded) + Number(summary!.domain) + Number(summary!.crashed)).toBe(
      Number(summary!.requests)
    )
  })

  it("--kind accepts remote in --help", async () => {
    const run = await runDemo("--help")
    expect(run.stdout).toContain("subprocess, thread, in-process or remote")
  })
})
