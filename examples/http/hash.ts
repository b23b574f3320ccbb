/**
 * What the server and the worker threads say to each other: the schemas of a
 * request and of an answer, given to both sides.
 */
import { Schema } from "effect"

/** A password to hash, with the salt to use (the worker makes one when it is left out). */
export const HashRequest = Schema.Struct({
  password: Schema.String,
  salt: Schema.optional(Schema.String)
})

/** The derived key, in hex, with the salt and the parameters that made it. */
export const HashResponse = Schema.Struct({
  hash: Schema.String,
  salt: Schema.String,
  iterations: Schema.Number,
  digest: Schema.String
})

/** PBKDF2 with SHA-256 and 600,000 iterations, as OWASP recommends. */
export const iterations = 600_000
export const digest = "sha256"
export const keyLength = 32

/** The schemas, spread into the pool's options and the runner's. */
export const Hashing = { request: HashRequest, response: HashResponse }
