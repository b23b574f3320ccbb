/**
 * The out-of-process kinds' options: the Schemas of `Thread.Options` and
 * `Subprocess.Options` (every option's rule and default, decoded once by
 * `Thread.make` and `Subprocess.make`), and what a child is started with.
 */
import * as os from "node:os"
import * as path from "node:path"
import type { ResourceLimits } from "node:worker_threads"
import { Duration, Effect, Schema } from "effect"
import type { Severity } from "effect/LogLevel"
import * as Protocol from "../Protocol.ts"
import { DomainError, InvalidOptions } from "../WorkerError.ts"
import type { WorkerKind } from "../WorkerKind.ts"
import type { Codec } from "./codec.ts"
import * as Options from "./options.ts"

/**
 * The kind `build` makes, or, when its options are invalid (it threw
 * `InvalidOptions`), a kind that carries the error: `Worker.fromKind` fails
 * with it, so the error reaches the error channel, and nothing starts.
 */
export const checkedKind = <K extends WorkerKind<any, any, any, any>>(name: string, build: () => K): K => {
  try {
    return build()
  } catch (error) {
    if (!(error instanceof InvalidOptions)) throw error
    return { name, spawn: Effect.die(error), invalid: error } as WorkerKind<any, any, any, any> as K
  }
}

/**
 * Environment variables a child inherits by default: what programs need to
 * run (the search path, the home and temporary directories, the locale, the
 * terminal), and nothing that usually holds a secret.
 */
export const defaultInheritedEnv: ReadonlyArray<string> = [
  "PATH",
  "HOME",
  "USER",
  "LOGNAME",
  "SHELL",
  "LANG",
  "LANGUAGE",
  "LC_ALL",
  "LC_CTYPE",
  "LC_MESSAGES",
  "TZ",
  "TMPDIR",
  "TMP",
  "TEMP",
  "TERM",
  "NO_COLOR",
  "FORCE_COLOR",
  // Windows
  "SystemRoot",
  "SystemDrive",
  "ComSpec",
  "PATHEXT",
  "WINDIR",
  "USERPROFILE",
  "APPDATA",
  "LOCALAPPDATA",
  "PROGRAMDATA"
]

const severities: ReadonlyArray<Severity | "None"> = ["Fatal", "Error", "Warn", "Info", "Debug", "Trace", "None"]

/** The options common to the out-of-process kinds (`Subprocess.CommonOptions` without the schemas). */
export interface CommonInput {
  readonly concurrency?: number | undefined
  readonly startTimeout?: Duration.Input | undefined
  readonly cancelGrace?: Duration.Input | undefined
  readonly shutdownTimeout?: Duration.Input | undefined
  readonly heartbeatInterval?: Duration.Input | undefined
  readonly silenceLimit?: Duration.Input | undefined
  readonly stderr?:
    | {
        readonly logLevel?: Severity | "None" | undefined
        readonly maxLineBytes?: number | undefined
        readonly tailLines?: number | undefined
      }
    | undefined
}

/** `Subprocess.CommonOptions`, decoded: the settings common to the out-of-process kinds. */
export interface CommonSettings<Req = any, Resp = any, E = any> {
  readonly request: Codec<Req>
  readonly response: Codec<Resp>
  readonly error: Codec<E>
  readonly concurrency: number
  readonly startTimeout: Duration.Duration
  readonly cancelGrace: Duration.Duration
  readonly shutdownTimeout: Duration.Duration
  readonly heartbeatInterval: Duration.Duration
  readonly silenceLimit: Duration.Duration
  readonly stderr: {
    readonly logLevel: Severity | "None"
    readonly maxLineBytes: number
    readonly tailLines: number
  }
}

/** `stderr` of `Subprocess.CommonOptions`. */
export const StderrOptions = Schema.Struct({
  logLevel: Options.withDefault(Options.oneOf("stderr.logLevel", severities), "Info"),
  maxLineBytes: Options.withDefault(Options.positiveInt("stderr.maxLineBytes"), 4096),
  tailLines: Options.withDefault(Options.nonNegativeInt("stderr.tailLines"), 10)
})

/** The fields of `Subprocess.CommonOptions`, with their defaults. */
export const commonFields = {
  request: Options.required(Options.schema<Codec<any>>("request")),
  response: Options.required(Options.schema<Codec<any>>("response")),
  error: Options.withDefault(Options.schema<Codec<any>>("error"), DomainError),
  concurrency: Options.withDefault(Options.positiveInt("concurrency"), 1),
  startTimeout: Options.withDefault(Options.duration("startTimeout"), "10 seconds"),
  cancelGrace: Options.withDefault(Options.duration("cancelGrace"), "1 second"),
  shutdownTimeout: Options.withDefault(Options.duration("shutdownTimeout"), "2 seconds"),
  heartbeatInterval: Options.withDefault(Options.interval("heartbeatInterval"), "500 millis"),
  silenceLimit: Options.withDefault(Options.duration("silenceLimit"), "1500 millis"),
  stderr: Options.nested("stderr", StderrOptions)
}

/** The check of `silenceLimit` against `heartbeatInterval`. */
export const silenceOverHeartbeat = Options.tie<{
  readonly heartbeatInterval: Duration.Duration
  readonly silenceLimit: Duration.Duration
}>(
  (o) => Duration.toMillis(o.silenceLimit) > Duration.toMillis(o.heartbeatInterval),
  (o) =>
    `silenceLimit must be longer than heartbeatInterval, got ${Duration.format(o.silenceLimit)} and ${Duration.format(o.heartbeatInterval)}`
)

/** Names of environment variables, or `"all"`. */
type Inherit = ReadonlyArray<string> | "all"

/** The fields both out-of-process kinds add to the common ones: the child's environment and `killGrace`. */
const childFields = {
  inheritEnv: Options.withDefault(Options.any<Inherit>(), defaultInheritedEnv),
  env: Options.withDefault(Options.any<Readonly<Record<string, string>>>(), {}),
  killGrace: Options.withDefault(Options.duration("killGrace"), "2 seconds")
}

/** `Thread.Options`, decoded. */
export interface ThreadSettings<Req = any, Resp = any, E = any> extends CommonSettings<Req, Resp, E> {
  readonly execArgv: ReadonlyArray<string> | undefined
  readonly argv: ReadonlyArray<string>
  readonly inheritEnv: Inherit
  readonly env: Readonly<Record<string, string>>
  readonly resourceLimits: ResourceLimits | undefined
  readonly killGrace: Duration.Duration
}

/** `Thread.Options`, decoded to a thread kind's settings. */
export const ThreadOptions: Options.Rule<ThreadSettings> = Options.options(
  Schema.Struct({
    ...commonFields,
    execArgv: Options.optional(Options.any<ReadonlyArray<string>>()),
    argv: Options.withDefault(Options.any<ReadonlyArray<string>>(), []),
    resourceLimits: Options.optional(Options.any<ResourceLimits>()),
    ...childFields
  }).check(silenceOverHeartbeat)
)

/** `Subprocess.Options`, decoded. */
export interface SubprocessSettings<Req = any, Resp = any, E = any> extends CommonSettings<Req, Resp, E> {
  readonly command: string
  readonly args: ReadonlyArray<string>
  readonly cwd: string | undefined
  readonly inheritEnv: Inherit
  readonly env: Readonly<Record<string, string>>
  readonly maxLineBytes: number
  readonly killGrace: Duration.Duration
}

/** `Subprocess.Options`, decoded to a subprocess kind's settings. */
export const SubprocessOptions: Options.Rule<SubprocessSettings> = Options.options(
  Schema.Struct({
    ...commonFields,
    command: Options.required(
      Options.refine<string>(
        (u) => typeof u === "string" && u !== "",
        () => "command must be a program name"
      )
    ),
    args: Options.withDefault(
      Options.map(
        Options.refine<ReadonlyArray<string>>(
          (u) => Array.isArray(u) && u.every((arg) => typeof arg === "string"),
          () => "args must be strings"
        ),
        (args) => [...args]
      ),
      []
    ),
    cwd: Options.optional(Options.any<string>()),
    maxLineBytes: Options.withDefault(Options.positiveInt("maxLineBytes"), Protocol.defaultMaxLineBytes),
    ...childFields
  }).check(silenceOverHeartbeat)
)

/** The environment of a child: the inherited names, then `extra`. */
export const childEnv = (inherit: Inherit, extra: Readonly<Record<string, string>>): Record<string, string> => {
  const env: Record<string, string> = {}
  const parent = globalThis.process.env
  if (inherit === "all") {
    for (const [name, value] of Object.entries(parent)) if (value !== undefined) env[name] = value
  } else {
    for (const name of inherit) {
      const value = parent[name]
      if (value !== undefined) env[name] = value
    }
  }
  return Object.assign(env, extra)
}

/**
 * Where a child keeps Node's compile cache unless told otherwise: the second
 * start of a child of the same script skips most of the compiling.
 */
export const compileCacheDir = (): string => path.join(os.tmpdir(), "effect-worker-pool-compile-cache")

/** `env` with Node's compile cache turned on, unless it says something about the cache itself. */
export const withCompileCache = (env: Record<string, string>): Record<string, string> =>
  env.NODE_COMPILE_CACHE !== undefined || env.NODE_DISABLE_COMPILE_CACHE !== undefined
    ? env
    : { ...env, NODE_COMPILE_CACHE: compileCacheDir() }

/** The heartbeat interval for a runner, in whole milliseconds. */
export const heartbeatMillis = (settings: CommonSettings): string =>
  String(Math.max(1, Math.round(Duration.toMillis(settings.heartbeatInterval))))
