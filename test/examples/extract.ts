/**
 * Finds the TypeScript examples of the documentation: the ```ts blocks of the
 * markdown files and the ```ts blocks of the JSDoc comments in src.
 */
import * as fs from "node:fs"
import * as path from "node:path"

/** One example, where it was found, and what to do with it. */
export interface Example {
  /** The file it comes from, relative to the repository root, with `/` separators. */
  readonly file: string
  /** The 1-based line of the file on which the code starts (the line after the fence). */
  readonly line: number
  readonly code: string
  readonly source: "markdown" | "jsdoc"
  /** Whether the example is run as a program (markdown blocks without a flag). */
  readonly run: boolean
  /**
   * The name a `file=NAME` block is written under, next to the other examples
   * of its markdown file, so that they can import or spawn it.
   */
  readonly name: string | undefined
  /** The ```text output block that follows it, if any: what it must print. */
  readonly expectedOutput: string | undefined
}

/** A fenced block that could not be read, such as one that is never closed. */
export interface Problem {
  readonly file: string
  readonly line: number
  readonly message: string
}

export interface Extracted {
  readonly examples: ReadonlyArray<Example>
  readonly problems: ReadonlyArray<Problem>
}

const typescript = new Set(["ts", "typescript"])

interface Fence {
  readonly line: number
  readonly lang: string
  readonly flags: ReadonlyArray<string>
  readonly body: ReadonlyArray<string>
}

/** The fenced blocks of a list of lines, with the line numbers of their fences. */
const fences = (
  lines: ReadonlyArray<string>,
  file: string,
  lineOf: (index: number) => number
): { fences: Array<Fence | "gap">; problems: Array<Problem> } => {
  const out: Array<Fence | "gap"> = []
  const problems: Array<Problem> = []
  let i = 0
  while (i < lines.length) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([^\s`]*)(.*)$/.exec(lines[i]!)
    if (open === null) {
      if (lines[i]!.trim() !== "") out.push("gap")
      i++
      continue
    }
    const [, indent, marker, lang, rest] = open
    const close = new RegExp(`^\\s*${marker![0] === "`" ? "`" : "~"}{${marker!.length},}\\s*$`)
    const body: Array<string> = []
    let j = i + 1
    while (j < lines.length && !close.test(lines[j]!)) {
      const l = lines[j]!
      body.push(l.startsWith(indent!) ? l.slice(indent!.length) : l.trimStart())
      j++
    }
    if (j === lines.length) {
      problems.push({ file, line: lineOf(i), message: "this fenced block is never closed" })
      break
    }
    out.push({ line: lineOf(i), lang: lang!.toLowerCase(), flags: rest!.trim().split(/\s+/).filter(Boolean), body })
    i = j + 1
  }
  return { fences: out, problems }
}

/**
 * The flags a ```ts fence may carry; each makes the block typechecked but not
 * run. `no-run` is for a fragment (one with `declare`, say); `signature` for
 * the signature of an API entry, written as code that tsc checks against the
 * export; `file=NAME` for a file that other examples of the page use (a worker
 * script), written as NAME next to them.
 */
const isFlag = (flag: string) => flag === "no-run" || flag === "signature" || /^file=[A-Za-z0-9._-]+\.ts$/.test(flag)

/** The examples of one markdown file. A ```ts block is run unless its fence carries a flag. */
export const fromMarkdown = (file: string, text: string): Extracted => {
  const { fences: found, problems } = fences(text.split(/\r?\n/), file, (index) => index + 1)
  const examples: Array<Example> = []
  found.forEach((fence, k) => {
    if (fence === "gap" || !typescript.has(fence.lang)) return
    for (const flag of fence.flags) {
      if (!isFlag(flag)) problems.push({ file, line: fence.line, message: `unknown flag "${flag}" on a ts fence` })
    }
    const name = fence.flags.find((flag) => flag.startsWith("file="))?.slice("file=".length)
    if (name !== undefined && examples.some((e) => e.name === name)) {
      problems.push({ file, line: fence.line, message: `a second block is named ${name}` })
    }
    const next = found[k + 1]
    const output =
      next !== undefined && next !== "gap" && next.lang === "text" && next.flags.includes("output")
        ? `${next.body.join("\n")}\n`
        : undefined
    examples.push({
      file,
      line: fence.line + 1,
      code: `${fence.body.join("\n")}\n`,
      source: "markdown",
      run: fence.flags.length === 0,
      name,
      expectedOutput: output
    })
  })
  return { examples, problems }
}

/** The examples in the JSDoc comments of one TypeScript file (typechecked only). */
export const fromJsDoc = (file: string, text: string): Extracted => {
  const lines = text.split(/\r?\n/)
  const examples: Array<Example> = []
  const problems: Array<Problem> = []
  let i = 0
  while (i < lines.length) {
    if (!/^\s*\/\*\*/.test(lines[i]!)) {
      i++
      continue
    }
    // One JSDoc comment: from `/**` to the line that closes it.
    const start = i
    while (i < lines.length && !lines[i]!.includes("*/")) i++
    const comment = lines.slice(start, i + 1).map((l) => l.replace(/^\s*\/?\*+\/?\s?/, "").replace(/\s*\*\/\s*$/, ""))
    const found = fences(comment, file, (index) => start + index + 1)
    problems.push(...found.problems)
    for (const fence of found.fences) {
      if (fence === "gap" || !typescript.has(fence.lang)) continue
      examples.push({
        file,
        line: fence.line + 1,
        code: `${fence.body.join("\n")}\n`,
        source: "jsdoc",
        run: false,
        name: undefined,
        expectedOutput: undefined
      })
    }
    i++
  }
  return { examples, problems }
}

/** Every file under `dir` (relative to `root`) whose name ends with `ext`, sorted. */
export const filesUnder = (root: string, dir: string, ext: string): Array<string> => {
  const absolute = path.join(root, dir)
  if (!fs.existsSync(absolute)) return []
  return fs
    .readdirSync(absolute, { recursive: true, encoding: "utf8" })
    .filter((name) => name.endsWith(ext))
    .map((name) => path.posix.join(dir, name.split(path.sep).join("/")))
    .sort()
}

/** The examples of README.md, docs/**\/*.md and the JSDoc of src/**\/*.ts. */
export const extractAll = (root: string): Extracted => {
  const examples: Array<Example> = []
  const problems: Array<Problem> = []
  const add = (extracted: Extracted) => {
    examples.push(...extracted.examples)
    problems.push(...extracted.problems)
  }
  for (const file of ["README.md", ...filesUnder(root, "docs", ".md")]) {
    add(fromMarkdown(file, fs.readFileSync(path.join(root, file), "utf8")))
  }
  for (const file of filesUnder(root, "src", ".ts")) {
    add(fromJsDoc(file, fs.readFileSync(path.join(root, file), "utf8")))
  }
  return { examples, problems }
}

/**
 * Where an example is written, relative to the output directory: one directory
 * per source file, in which each example is `L<line>.ts` or its `file=` name,
 * such as `docs_api_Worker.md/L12.ts`.
 */
export const fileNameOf = (example: Example): string =>
  `${example.file.replace(/[^A-Za-z0-9.]+/g, "_")}/${example.name ?? `L${example.line}.ts`}`

/**
 * What a program printed, without the lines of Effect's default logger (which
 * carry a timestamp and a fiber id), so that it can be compared with a
 * ```text output block.
 */
export const withoutLogLines = (stdout: string): string => {
  const out: Array<string> = []
  let inRecord = false
  for (const line of stdout.split(/\r?\n/)) {
    if (inRecord) {
      if (line === "}") inRecord = false
      continue
    }
    if (/^\[\d{2}:\d{2}:\d{2}\.\d{3}\] [A-Z]+ \(#\d+\)/.test(line)) {
      inRecord = line.endsWith("{")
      continue
    }
    out.push(line)
  }
  return out.join("\n")
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes. */
export const anchorOf = (heading: string): string =>
  heading
    .trim()
    .toLowerCase()
    .replace(/<[^>]*>/g, "")
    .replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-")

/** The anchors of a markdown file, with GitHub's `-1`, `-2` suffixes for repeated headings. */
export const anchorsOf = (text: string): Set<string> => {
  const anchors = new Set<string>()
  const seen = new Map<string, number>()
  let inFence = false
  for (const line of text.split(/\r?\n/)) {
    if (/^\s*(`{3,}|~{3,})/.test(line)) inFence = !inFence
    if (inFence) continue
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)
    if (heading === null) continue
    const base = anchorOf(heading[1]!)
    const n = seen.get(base) ?? 0
    seen.set(base, n + 1)
    anchors.add(n === 0 ? base : `${base}-${n}`)
  }
  return anchors
}

/** The relative links of a markdown file (outside code), with their line numbers. */
export const linksOf = (text: string): Array<{ readonly line: number; readonly target: string }> => {
  const links: Array<{ line: number; target: string }> = []
  let inFence = false
  text.split(/\r?\n/).forEach((line, index) => {
    if (/^\s*(`{3,}|~{3,})/.test(line)) inFence = !inFence
    if (inFence) return
    const prose = line.replace(/`[^`]*`/g, "")
    for (const match of prose.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
      const target = match[1]!
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue
      links.push({ line: index + 1, target })
    }
  })
  return links
}
