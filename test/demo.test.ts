/**
 * The demo, run as `npm start` runs it: a child process of the Node running
 * the tests, which reads TypeScript directly.
 */
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"

const projectRoot = fileURLToPath(new URL("..", import.meta.url))

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

const runDemo = (...args: ReadonlyArray<string>): Promise<Run> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--conditions=effect-worker-pool-source", "examples/demo.ts", ...args], {
      cwd: projectRoot,
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk
    })
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk
    })
    child.on("error", reject)
    child.on("close", (code) => resolve({ code, stdout, stderr }))
  })

interface Summary {
  readonly requests: number
  readonly succeeded: number
  readonly domainErrors: number
  readonly crashed: number
  readonly lost: number
}

const summaryLine =
  /requests (?<requests>\d+), succeeded (?<succeeded>\d+), domain errors (?<domainErrors>\d+), crashed (?<crashed>\d+), lost (?<lost>-?\d+)/

const summaryOf = (stdout: string): Summary => {
  const groups = summaryLine.exec(stdout)?.groups
  if (groups === undefined) throw new Error(`no summary line in the output:\n${stdout}`)
  return {
    requests: Number(groups.requests),
    succeeded: Number(groups.succeeded),
    domainErrors: Number(groups.domainErrors),
    crashed: Number(groups.crashed),
    lost: Number(groups.lost)
  }
}

/** Runs the demo, expects it to succeed with every request accounted for, and returns its output. */
const runToSummary = async (...args: ReadonlyArray<string>): Promise<{ stdout: string; summary: Summary }> => {
  const run = await runDemo(...args)
  expect(run.stderr).toBe("")
  expect(run.code).toBe(0)
  const summary = summaryOf(run.stdout)
  expect(summary.lost).toBe(0)
  expect(summary.requests).toBeGreaterThan(0)
  expect(summary.succeeded + summary.domainErrors + summary.crashed).toBe(summary.requests)
  return { stdout: run.stdout, summary }
}

describe("demo", { timeout: 60_000 }, () => {
  it("runs under load with crashes and loses no request", async () => {
    const { stdout } = await runToSummary("--duration", "1", "--crash-rate", "0.05", "--workers", "3")
    // Not a terminal: the table is printed once, at the end, with no cursor movement.
    expect(stdout).not.toContain("\x1b[")
    expect(stdout).toMatch(/id\s+state\s+in-flight\s+limit\s+completed\s+errored\s+crashes\s+restarts/)
    // One row per worker: its id, then its state.
    for (const id of [0, 1, 2]) expect(stdout).toMatch(new RegExp(`^${id}\\s+[A-Z][a-z]+\\s`, "m"))
    // The pool's warning for each crash is not logged.
    expect(stdout).not.toMatch(/WARN|worker crashed/)
  })

  it("with no crashes and no bad requests, every request succeeds", async () => {
    const { summary } = await runToSummary("--duration", "0.5", "--crash-rate", "0", "--error-rate", "0")
    expect(summary.succeeded).toBe(summary.requests)
  })

  it("when every request is bad, every request ends in a domain error", async () => {
    const { summary } = await runToSummary("--duration", "0.5", "--crash-rate", "0", "--error-rate", "1")
    expect(summary.domainErrors).toBe(summary.requests)
  })

  it("when every request crashes its worker, every request ends in a crash", async () => {
    const { summary } = await runToSummary("--duration", "0.5", "--crash-rate", "1", "--policy", "round-robin")
    expect(summary.crashed).toBe(summary.requests)
  })

  it("--help prints the usage and exits 0", async () => {
    const run = await runDemo("--help")
    expect(run.code).toBe(0)
    expect(run.stdout).toContain("Usage:")
    for (const flag of ["--workers", "--policy", "--duration", "--crash-rate", "--error-rate", "--concurrency"]) {
      expect(run.stdout).toContain(flag)
    }
  })

  it.each([
    "--workers 0",
    "--policy fastest",
    "--duration soon",
    "--crash-rate 1.5",
    "--concurrency 2.5",
    "--no-such-flag"
  ])("an invalid flag exits 2 with a message: %s", async (flags) => {
    const run = await runDemo(...flags.split(" "))
    expect(run.code).toBe(2)
    expect(run.stderr).toContain(flags.split(" ")[0])
    expect(run.stdout).toBe("")
  })
})
