/**
 * The worker script: runs in each thread of the pool. PBKDF2 takes a few
 * hundred milliseconds of CPU per password, off the server's event loop.
 */
import { pbkdf2Sync, randomBytes } from "node:crypto"
import { DomainError, Runner } from "effect-worker-pool/child"
import { digest, Hashing, iterations, keyLength } from "./hash.ts"

Runner.run({
  ...Hashing,
  handler: ({ password, salt = randomBytes(16).toString("hex") }) => {
    if (password === "") throw new DomainError({ reason: "the password is empty" })
    if (password.length > 1024) throw new DomainError({ reason: "the password is longer than 1024 characters" })
    // Demo only, for the crash in the recipe and its test: this password ends
    // the thread, as a native crash or an exhausted heap would. Delete it.
    if (password === "crash the worker") process.exit(1)
    const hash = pbkdf2Sync(password, salt, iterations, keyLength, digest).toString("hex")
    return { hash, salt, iterations, digest }
  }
})
