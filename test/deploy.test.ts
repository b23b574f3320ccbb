/**
 * The deployment guide, docs/deploy.md, checked against the runner: its
 * runner file (test/fixtures/deploy-runner/runner.ts, word for word) runs
 * with the guide's command and answers the guide's health probes, drains on
 * SIGTERM mid-request and exits 0; the numbers of its manifests and of its
 * systemd unit agree with the runner file and the runner's defaults (the
 * grace periods exceed `drainTimeout` plus the preStop sleep, the ports and
 * paths are the runner's).
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, Result, Schedule } from "effect"
import { WorkerId } from "effect-worker-pool"
import * as Options from "../src/internal/options.ts"
import * as Health from "../src/internal/remote/health.ts"
import * as RemoteOptions from "../src/internal/remote/options.ts"
import * as Remote from "../src/Remote.ts"
import * as WorkerModule from "../src/Worker.ts"
import { schemas } from "./fixtures/deploy-runner/work.ts"
import { httpRequest } from "./fixtures/http.ts"
import { freePort, startScript } from "./fixtures/remote-processes.ts"
import { selfSigned } from "./fixtures/tls.ts"

const root = fileURLToPath(new URL("..", import.meta.url))
const guide = fs.readFileSync(path.join(root, "docs", "deploy.md"), "utf8")
const runnerFile = fileURLToPath(new URL("./fixtures/deploy-runner/runner.ts", import.meta.url))

/** The fenced blocks of the guide in `lang`, in order. */
const blocks = (lang: string): Array<string> =>
  [...guide.matchAll(/^```(\S+)[^\n]*\n([\s\S]*?)^```$/gm)].filter((m) => m[1] === lang).map((m) => m[2]!)

/** The one block of `lang` that matches `pattern`. */
const block = (lang: string, pattern: RegExp): string => {
  const found = blocks(lang).filter((b) => pattern.test(b))
  assert.strictEqual(found.length, 1, `docs/deploy.md has one ${lang} block matching ${pattern}`)
  return found[0]!
}

/** The first capture of `pattern` in `text`. */
const capture = (text: string, pattern: RegExp): string => {
  const m = pattern.exec(text)
  assert.isNotNull(m, `no ${pattern} in:\n${text}`)
  return m![1]!
}

const runner = block("ts", /^\/\/ runner\.ts/)
/** A default of the runner file: `setting("NAME", "value")`. */
const setting = (name: string) => capture(runner, new RegExp(`setting\\("${name}", "([^"]+)"\\)`))

/** `drainTimeout` of the runner file: its own, or the runner's default. */
const drainSeconds = (): number => {
  assert.notMatch(runner, /drainTimeout/, "the guide's numbers assume the default drainTimeout")
  const decoded = Options.decodeResult(RemoteOptions.ServeOptions)({
    ...schemas,
    handler: (text: string) => text.length,
    port: 0
  })
  assert.isTrue(Result.isSuccess(decoded))
  return Duration.toSeconds(Result.getOrThrow(decoded).drainTimeout)
}

/** A GET of `url`, on a connection of its own. */
const get = (url: string) => {
  const { hostname, port, pathname, search } = new URL(url)
  return httpRequest({ host: hostname, port: Number(port), path: `${pathname}${search}` })
}

describe("docs/deploy.md", { timeout: 120_000 }, () => {
  it("its runner file is test/fixtures/deploy-runner/runner.ts, word for word; its work.ts is docs/remote.md's", () => {
    assert.strictEqual(fs.readFileSync(runnerFile, "utf8"), runner)
    const remote = fs.readFileSync(path.join(root, "docs", "remote.md"), "utf8")
    const work = (text: string) => capture(text, /^```ts file=work\.ts\n([\s\S]*?)^```$/m)
    assert.strictEqual(work(guide), work(remote))
  })

  it.live("its command runs the runner file; the probes answer; SIGTERM mid-request drains it and it exits 0", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const [command, ...probes] = block("sh", /node runner\.ts/)
          .split("\n")
          .filter((line) => line.trim() !== "")
        // `NAME=value ... node runner.ts`: the environment the guide gives the runner.
        const words = command!.trim().split(/\s+/)
        assert.deepStrictEqual(words.slice(-2), ["node", "runner.ts"])
        const env = Object.fromEntries(words.slice(0, -2).map((word) => word.split("=", 2) as [string, string]))
        // The guide's ./tls, with a certificate made for the test, in a directory of its own (the working directory).
        const pair = selfSigned("runner")
        const dir = yield* Effect.acquireRelease(
          Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "ewp-deploy-"))),
          (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
        )
        fs.mkdirSync(path.join(dir, env.RUNNER_TLS_DIR!), { recursive: true })
        fs.writeFileSync(path.join(dir, env.RUNNER_TLS_DIR!, "tls.key"), pair.key)
        fs.writeFileSync(path.join(dir, env.RUNNER_TLS_DIR!, "tls.crt"), pair.cert)
        // The guide's ports are the runner file's defaults (7400, 7401); the test takes free ones instead.
        const [port, healthPort] = [yield* freePort, yield* freePort]
        const started = yield* startScript(runnerFile, port, {
          env: { ...env, RUNNER_PORT: String(port), RUNNER_HEALTH_PORT: String(healthPort) },
          cwd: dir
        })
        assert.match(yield* started.waitFor(/remote runner listening/), new RegExp(`127\\.0\\.0\\.1:${healthPort}`))

        // `curl -fsS <url>`: each probe of the guide, on the test's health port, answers 200.
        assert.strictEqual(probes.length, 2)
        const answers = yield* Effect.forEach(probes, (probe) => {
          const url = new URL(capture(probe, /^curl -fsS (\S+)$/))
          assert.strictEqual(url.port, setting("RUNNER_HEALTH_PORT"))
          url.port = String(healthPort)
          return get(url.href)
        })
        assert.deepStrictEqual(answers, [
          { status: 200, body: "ready\n" },
          { status: 200, body: "live\n" }
        ])

        const worker = yield* WorkerModule.fromKind(
          WorkerId.make(0),
          Remote.make(`127.0.0.1:${port}`, {
            ...schemas,
            token: env.RUNNER_TOKEN,
            tls: { ca: pair.cert },
            connectTimeout: "20 seconds"
          }),
          { restart: Schedule.spaced("1 hour") }
        )
        const held = yield* Effect.forkChild(Effect.exit(worker.dispatch("hold on")))
        yield* started.waitFor(/started hold on/)
        started.child.kill("SIGTERM")
        assert.deepStrictEqual(yield* Fiber.join(held), Exit.succeed(7))
        yield* started.waitFor(/remote runner draining/)
        assert.deepStrictEqual(yield* started.exited, { code: 0, signal: null })
      })
    )
  )

  it("the Deployment's numbers agree with the runner file and the runner's defaults", () => {
    const deployment = block("yaml", /kind: Deployment/)
    const drain = drainSeconds()
    const grace = Number(capture(deployment, /terminationGracePeriodSeconds: (\d+)/))
    const preStop = Number(capture(deployment, /preStop:\n\s+sleep:\n\s+seconds: (\d+)/))
    assert.isAbove(grace, drain + preStop, "SIGKILL comes after the preStop sleep and a full drain")
    assert.match(guide, new RegExp(`the grace period must exceed their sum, ${drain + preStop} seconds`))

    const ports = Object.fromEntries(
      [...deployment.matchAll(/- name: (\w+)\n\s+containerPort: (\d+)/g)].map((m) => [m[1]!, m[2]!])
    )
    assert.deepStrictEqual(ports, { runner: setting("RUNNER_PORT"), health: setting("RUNNER_HEALTH_PORT") })
    const probe = (kind: string) => {
      const [, probePath, probePort] = new RegExp(`${kind}:\\n\\s+httpGet:\\n\\s+path: (\\S+)\\n\\s+port: (\\S+)`).exec(
        deployment
      )!
      return { path: probePath, port: probePort }
    }
    assert.deepStrictEqual(probe("readinessProbe"), { path: Health.paths.ready, port: "health" })
    assert.deepStrictEqual(probe("livenessProbe"), { path: Health.paths.live, port: "health" })
    // The runner file's defaults reach every interface, and the TLS Secret is mounted where it looks.
    assert.strictEqual(setting("RUNNER_HOST"), "0.0.0.0")
    assert.strictEqual(setting("RUNNER_HEALTH_HOST"), "0.0.0.0")
    assert.strictEqual(capture(deployment, /mountPath: (\S+)/), setting("RUNNER_TLS_DIR"))
    assert.notMatch(deployment, /name: RUNNER_(PORT|HEALTH_PORT|HOST|HEALTH_HOST|TLS_DIR)\n/, "no default overridden")
    assert.match(deployment, /name: RUNNER_TOKEN\n/)
    // node itself gets the signal.
    assert.strictEqual(capture(deployment, /command: (\[.*\])/), '["node", "runner.ts"]')
    assert.match(deployment, /maxUnavailable: 0/)
  })

  it("the headless Service and the PodDisruptionBudget select the Deployment's pods, on the runner's port", () => {
    const deployment = block("yaml", /kind: Deployment/)
    const service = block("yaml", /kind: Service/)
    const budget = block("yaml", /kind: PodDisruptionBudget/)
    const label = capture(deployment, /template:\n\s+metadata:\n\s+labels:\n\s+(\S+: \S+)/)
    assert.match(service, /clusterIP: None/, "headless: one A record per ready pod")
    assert.notMatch(service, /publishNotReadyAddresses: true/, "only ready pods are published")
    assert.strictEqual(capture(service, /selector:\n\s+(\S+: \S+)/), label)
    assert.strictEqual(capture(service, /port: (\d+)/), setting("RUNNER_PORT"))
    assert.strictEqual(capture(service, /targetPort: (\S+)/), "runner")
    assert.match(budget, /apiVersion: policy\/v1/)
    assert.strictEqual(capture(budget, /matchLabels:\n\s+(\S+: \S+)/), label)
    assert.strictEqual(capture(budget, /maxUnavailable: (\d+)/), "1")
  })

  it("the systemd unit stops the runner with SIGTERM and waits longer than drainTimeout", () => {
    const unit = block("ini", /\[Service\]/)
    const keys = new Map<string, Array<string>>()
    for (const line of unit.split("\n")) {
      const m = /^(\w+)=(.*)$/.exec(line)
      if (m !== null) keys.set(m[1]!, [...(keys.get(m[1]!) ?? []), m[2]!])
    }
    assert.deepStrictEqual(keys.get("KillSignal"), ["SIGTERM"])
    const timeout = Number(keys.get("TimeoutStopSec")![0])
    assert.isAbove(timeout, drainSeconds())
    assert.strictEqual(keys.get("ExecStart")![0], "/usr/bin/node runner.ts")
    assert.deepStrictEqual(keys.get("Environment"), [`RUNNER_TLS_DIR=${setting("RUNNER_TLS_DIR")}`])
    assert.deepStrictEqual(keys.get("Restart"), ["on-failure"])
    // Docker's wait, named in the text, too.
    assert.isAbove(Number(capture(guide, /docker stop --time (\d+)/)), drainSeconds())
    assert.isAbove(Number(capture(guide, /stop_grace_period: (\d+)s/)), drainSeconds())
  })
})
