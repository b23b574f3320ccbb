/**
 * The HTTP recipe (docs/http.md, examples/http/): the server is started as a
 * user starts it, on an ephemeral port, and real requests hit it.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { pbkdf2Sync } from "node:crypto"
import * as fs from "node:fs"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { digest, iterations, keyLength } from "../examples/http/hash.ts"
import { fromMarkdown } from "./examples/extract.ts"
import { node } from "./fixtures/support.ts"

const root = fileURLToPath(new URL("..", import.meta.url))

interface Health {
  readonly workers: ReadonlyArray<{
    readonly id: number
    readonly state: string
    readonly crashes: number
    readonly restarts: number
  }>
  readonly spares: ReadonlyArray<{ readonly kind: string }>
}

let server: ChildProcess
let base: string
let output = ""
const exited = new Promise<number | null>((resolve) => {
  const started = spawn(node, ["--conditions=effect-worker-pool-source", "examples/http/server.ts"], {
    cwd: root,
    env: { ...process.env, PORT: "0", NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"]
  })
  server = started
  started.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    output += chunk
  })
  started.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    output += chunk
  })
  started.on("exit", (code) => resolve(code))
})

/** Resolves with the server's port once it logs the address it listens on. */
const listening = new Promise<number>((resolve, reject) => {
  const look = () => {
    const port = /Listening on http:\/\/\S+:(\d+)/.exec(output)?.[1]
    if (port !== undefined) resolve(Number(port))
  }
  server.stdout!.on("data", look)
  exited.then((code) => reject(new Error(`the server exited with ${code} before listening:\n${output}`)))
})

const hash = async (body: string) => {
  const response = await fetch(`${base}/hash`, {
    method: "POST",
    body,
    headers: { "content-type": "application/json" }
  })
  return { status: response.status, body: (await response.json()) as Record<string, unknown> }
}

const health = async () => {
  const response = await fetch(`${base}/health`)
  return { status: response.status, body: (await response.json()) as Health }
}

beforeAll(async () => {
  base = `http://127.0.0.1:${await listening}`
}, 30_000)

afterAll(async () => {
  if (server.exitCode === null) server.kill("SIGTERM")
  await exited
})

describe("the HTTP recipe", { timeout: 30_000 }, () => {
  it("hashes a password on a thread: 200 with the PBKDF2 key", async () => {
    const { status, body } = await hash(JSON.stringify({ password: "hunter2", salt: "NaCl" }))
    expect(status).toBe(200)
    expect(body).toEqual({
      hash: pbkdf2Sync("hunter2", "NaCl", iterations, keyLength, digest).toString("hex"),
      salt: "NaCl",
      iterations,
      digest
    })
  })

  it("answers a bad request with 400: a DomainError of the worker, or a body that is not a request", async () => {
    expect(await hash(JSON.stringify({ password: "" }))).toEqual({
      status: 400,
      body: { error: "DomainError", message: "the password is empty" }
    })
    const notJson = await hash("not json")
    expect([notJson.status, notJson.body.error]).toEqual([400, "BadRequest"])
    const notARequest = await hash(JSON.stringify({ password: 42 }))
    expect([notARequest.status, notARequest.body.error]).toEqual([400, "BadRequest"])
  })

  it("answers a crash with 503, then recovers: the next request is served and the thread is replaced", async () => {
    const before = await health()
    const crashesBefore = before.body.workers.reduce((n, w) => n + w.crashes, 0)

    const crash = await hash(JSON.stringify({ password: "crash the worker" }))
    expect(crash.status).toBe(503)
    expect(crash.body.error).toBe("WorkerCrash")
    expect(crash.body.message).toMatch(/exited with code 1/)

    const after = await hash(JSON.stringify({ password: "still here", salt: "s" }))
    expect(after.status).toBe(200)
    expect(after.body.hash).toBe(pbkdf2Sync("still here", "s", iterations, keyLength, digest).toString("hex"))

    // As a readiness probe would: ask /health until the crashed thread is back.
    let now = await health()
    while (!now.body.workers.every((w) => w.state === "Healthy")) now = await health()
    expect(now.status).toBe(200)
    expect(now.body.workers.reduce((n, w) => n + w.crashes, 0)).toBe(crashesBefore + 1)
    const crashed = now.body.workers.find((w) => w.crashes > 0)!
    expect(crashed.restarts).toBeGreaterThanOrEqual(1)
  })

  it("shows every worker's health and the spare on /health", async () => {
    const { status, body } = await health()
    expect(status).toBe(200)
    expect(body.workers.map((w) => w.id)).toEqual([0, 1])
    for (const worker of body.workers) {
      expect(worker).toMatchObject({ state: "Healthy", inFlight: 0 })
      expect(worker).toHaveProperty("completed")
    }
    expect(body.spares.map((s) => s.kind)).toEqual(["thread"])
  })

  it("stops on SIGTERM, as NodeRuntime reports an interruption (130)", async () => {
    server.kill("SIGTERM")
    expect(await exited).toBe(130)
  })
})

describe("docs/http.md", () => {
  it("shows the files of examples/http/ as they are", () => {
    const page = fs.readFileSync(new URL("../docs/http.md", import.meta.url), "utf8")
    const shown = fromMarkdown("docs/http.md", page).examples.filter((e) => e.name !== undefined)
    expect(shown.map((e) => e.name).sort()).toEqual(["hash-worker.ts", "hash.ts", "server.ts"])
    for (const example of shown) {
      expect(example.code, example.name).toBe(
        fs.readFileSync(new URL(`../examples/http/${example.name}`, import.meta.url), "utf8")
      )
    }
  })
})
