/**
 * Option checking and defaults shared by the out-of-process kinds.
 */
import * as os from "node:os"
import * as path from "node:path"
import { Duration, Effect } from "effect"
import type { Severity } from "effect/LogLevel"
import { InvalidOptions } from "../WorkerError.ts"
import type { WorkerKind } from "../WorkerKind.ts"
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

/** Throws `InvalidOptions` with `reason`. */
export const invalid = (reason: string): never => {
  throw new InvalidOptions({ reason })
}

export const positiveInt = (name: string, value: number | undefined, fallback: number): number =>
  Options.read(Options.positiveInt(name), value ?? fallback)

export const nonNegativeInt = (name: string, value: number | undefined, fallback: number): number =>
  Options.read(Options.nonNegativeInt(name), value ?? fallback)

export const duration = (
  name: string,
  value: Duration.Input | undefined,
  fallback: Duration.Input
): Duration.Duration => Options.readDuration(name, value, fallback)

const severities: ReadonlyArray<Severity | "None"> = ["Fatal", "Error", "Warn", "Info", "Debug", "Trace", "None"]

export const logLevel = (name: string, value: Severity | "None" | undefined, fallback: Severity): Severity | "None" =>
  Options.read(Options.oneOf(name, severities), value ?? fallback)

/** Settings common to the out-of-process kinds, with their defaults applied. */
export interface CommonSettings {
  readonly concurrency: number
  readonly startTimeout: Duration.Duration
  readonly cancelGrace: Duration.Duration
  readonly shutdownTimeout: Duration.Duration
  readonly stderrLogLevel: Severity | "None"
  readonly stderrMaxLineBytes: number
  readonly stderrTailLines: number
  readonly heartbeatInterval: Duration.Duration
  readonly silenceLimit: Duration.Duration
}

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

export const defaults = {
  concurrency: 1,
  startTimeout: "10 seconds",
  cancelGrace: "1 second",
  shutdownTimeout: "2 seconds",
  killGrace: "2 seconds",
  stderrLogLevel: "Info",
  stderrMaxLineBytes: 4096,
  stderrTailLines: 10,
  heartbeatInterval: "500 millis",
  silenceLimit: "1500 millis"
} as const

/** The settings of `options`, checked, with the defaults applied; throws `InvalidOptions`. */
export const common = (options: CommonInput): CommonSettings => {
  const heartbeatInterval = duration("heartbeatInterval", options.heartbeatInterval, defaults.heartbeatInterval)
  const silenceLimit = duration("silenceLimit", options.silenceLimit, defaults.silenceLimit)
  if (Duration.toMillis(heartbeatInterval) < 1) invalid("heartbeatInterval must be at least 1 millisecond")
  if (Duration.toMillis(silenceLimit) <= Duration.toMillis(heartbeatInterval)) {
    invalid(
      `silenceLimit must be longer than heartbeatInterval, got ${Duration.format(silenceLimit)} and ${Duration.format(heartbeatInterval)}`
    )
  }
  return {
    concurrency: positiveInt("concurrency", options.concurrency, defaults.concurrency),
    startTimeout: duration("startTimeout", options.startTimeout, defaults.startTimeout),
    cancelGrace: duration("cancelGrace", options.cancelGrace, defaults.cancelGrace),
    shutdownTimeout: duration("shutdownTimeout", options.shutdownTimeout, defaults.shutdownTimeout),
    stderrLogLevel: logLevel("stderr.logLevel", options.stderr?.logLevel, defaults.stderrLogLevel),
    stderrMaxLineBytes: positiveInt("stderr.maxLineBytes", options.stderr?.maxLineBytes, defaults.stderrMaxLineBytes),
    stderrTailLines: nonNegativeInt("stderr.tailLines", options.stderr?.tailLines, defaults.stderrTailLines),
    heartbeatInterval,
    silenceLimit
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

/** The environment of a child: the inherited names, then `extra`. */
export const childEnv = (
  inherit: ReadonlyArray<string> | "all" | undefined,
  extra: Readonly<Record<string, string>> | undefined
): Record<string, string> => {
  const env: Record<string, string> = {}
  const parent = globalThis.process.env
  if (inherit === "all") {
    for (const [name, value] of Object.entries(parent)) if (value !== undefined) env[name] = value
  } else {
    for (const name of inherit ?? defaultInheritedEnv) {
      const value = parent[name]
      if (value !== undefined) env[name] = value
    }
  }
  if (extra !== undefined) Object.assign(env, extra)
  return env
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
