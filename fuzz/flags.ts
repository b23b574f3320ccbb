/**
 * The flags of `npm run fuzz`.
 */
import { randomInt } from "node:crypto"
import { type CommandLine, readFlags } from "../chaos/command-line.ts"
import { entries, type Target, targets } from "./catalogue.ts"

/** What a fuzz run is asked to do. */
export interface FuzzOptions {
  /** The seed of the first run; run k plays seed + k. */
  readonly seed: number
  /** In-process operations in all (virtual time). */
  readonly ops: number
  /** Thread and subprocess operations in all (real time). */
  readonly oopOps: number
  readonly opsPerRun: number
  readonly oopOpsPerRun: number
  /** The targets played (all, unless `--only` names some). */
  readonly targets: ReadonlyArray<Target>
  /** The behaviours played (all, unless `--only` names some). */
  readonly only: ReadonlySet<string> | undefined
  /** The behaviours left out (`--except`). */
  readonly except: ReadonlySet<string> | undefined
  /** At most this many runs. */
  readonly runs: number | undefined
  readonly budgetMillis: number
  /** The leak check's pools (0: none). */
  readonly leakPools: number
  readonly leakLoad: number
  readonly shrink: boolean
  /** A plan file to replay instead. */
  readonly plan: string | undefined
}

/** The defaults of a full run. */
export const defaults = {
  ops: 100_000,
  oopOps: 5_000,
  opsPerRun: 200,
  oopOpsPerRun: 80,
  budgetMinutes: 15,
  leakPools: 1_000,
  leakLoad: 200
} as const

export const usage = `Usage: npm run fuzz -- [flags]

  --seed N              the seed of the first run; run k plays seed + k (default: drawn, printed)
  --ops N               in-process operations, in virtual time (default ${defaults.ops})
  --oop-ops N           thread and subprocess operations, in real time (default ${defaults.oopOps})
  --ops-per-run N       operations of an in-process run (default ${defaults.opsPerRun})
  --oop-ops-per-run N   operations of a thread or subprocess run (default ${defaults.oopOpsPerRun})
  --only A,B,...        targets (${targets.join(", ")}) and behaviours (see --list) to play
  --except A,B,...      behaviours not to play
  --runs N              stop after N runs
  --budget-minutes M    start no run past this time, the leak check included (default ${defaults.budgetMinutes})
  --leak-pools N        pools of the leak check; 0 skips it (default ${defaults.leakPools}; none with --runs or --only)
  --leak-load N         requests each pool of the leak check is loaded with (default ${defaults.leakLoad})
  --no-shrink           report failing plans as they are
  --plan FILE           replay a plan the fuzzer saved (a shrunk one)
  --list                the catalogue of behaviours
  --help                this text

A failing run prints its seed and the command that replays it.`

/** What the command line asks for: `--list` too. */
export type Parsed = CommandLine<FuzzOptions> | { readonly _tag: "List" }

/** Parses the command line. */
export const parseFlags = (args: ReadonlyArray<string>): Parsed => {
  const flags = readFlags(args, {
    seed: "string",
    ops: "string",
    "oop-ops": "string",
    "ops-per-run": "string",
    "oop-ops-per-run": "string",
    only: "string",
    except: "string",
    runs: "string",
    "budget-minutes": "string",
    "leak-pools": "string",
    "leak-load": "string",
    "no-shrink": "boolean",
    plan: "string",
    list: "boolean",
    help: "boolean"
  })
  if (flags._tag === "Invalid") return flags
  const { values } = flags
  if (values.help === true) return { _tag: "Help" }
  if (values.list === true) return { _tag: "List" }
  const chosenTargets: Array<Target> = []
  let only: Set<string> | undefined
  for (const name of flags.names("only") ?? []) {
    if ((targets as ReadonlyArray<string>).includes(name)) chosenTargets.push(name as Target)
    else if (entries.has(name)) {
      only ??= new Set()
      only.add(name)
    } else flags.problem(`--only: ${name} is neither a target (${targets.join(", ")}) nor a behaviour (see --list)`)
  }
  let except: Set<string> | undefined
  for (const name of flags.names("except") ?? []) {
    if (!entries.has(name)) flags.problem(`--except: ${name} is not a behaviour (see --list)`)
    except ??= new Set()
    except.add(name)
  }
  const narrowed = values.runs !== undefined || values.only !== undefined || values.except !== undefined
  const runTargets = (chosenTargets.length > 0 ? chosenTargets : [...targets]).filter(
    (t) => only === undefined || [...only].some((name) => entries.get(name)!.targets.includes(t))
  )
  if (runTargets.length === 0) flags.problem("--only leaves no target that plays the behaviours it names")
  return flags.result<FuzzOptions>({
    seed: flags.integer("seed", values.seed === undefined ? randomInt(2 ** 31) : 0, 0, 2 ** 32 - 1),
    ops: flags.integer("ops", defaults.ops, 0),
    oopOps: flags.integer("oop-ops", defaults.oopOps, 0),
    opsPerRun: flags.integer("ops-per-run", defaults.opsPerRun, 1),
    oopOpsPerRun: flags.integer("oop-ops-per-run", defaults.oopOpsPerRun, 1),
    targets: runTargets,
    only,
    except,
    runs: values.runs === undefined ? undefined : flags.integer("runs", 1, 1),
    budgetMillis: flags.number("budget-minutes", defaults.budgetMinutes, 0.1) * 60_000,
    leakPools: flags.integer("leak-pools", narrowed ? 0 : defaults.leakPools, 0),
    leakLoad: flags.integer("leak-load", defaults.leakLoad, 1),
    shrink: values["no-shrink"] !== true,
    plan: typeof values.plan === "string" ? values.plan : undefined
  })
}
