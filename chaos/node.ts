/**
 * The Node that runs the TypeScript worker scripts of `npm run chaos` and
 * `npm run fuzz`: this one when it strips types, or else the project's own
 * (the `node` package among its dev dependencies).
 */
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("..", import.meta.url))

/** Node runs TypeScript by stripping types from 22.18 (and 23.6) on. */
const stripsTypes = (version: string): boolean => {
  const [major = 0, minor = 0] = version.replace(/^v/, "").split(".").map(Number)
  return major > 23 || (major === 23 && minor >= 6) || (major === 22 && minor >= 18)
}

/** A Node that runs a TypeScript worker: this one, or the project's own. */
export const typeScriptNode: string = stripsTypes(process.version)
  ? process.execPath
  : path.join(root, "node_modules", ".bin", "node")
