/**
 * The JSON form of a schema on the wire (JSON lines, the remote kind): what
 * `Schema.toCodecJson` derives, except for the fields marked with an
 * `effect/workers` `Transferable` schema. `Transferable.schema` gives its
 * field no JSON form (the value passes through as it is, for `postMessage`),
 * so a `Transferable.Uint8Array` would be written as an object of numbered
 * bytes and refused when read back. Here such a field of bytes is a base64
 * string, as a plain `Schema.Uint8Array` is; any other `Transferable`
 * declaration takes the JSON form of a declaration without one (its value
 * must be a JSON value, else the schema refuses it, with its path).
 *
 * The schema's AST is rewritten where the derivation reads it: at the end of
 * each chain of encodings, in objects, arrays, unions, suspensions and the
 * type parameters of declarations. A schema without such a field is returned
 * as it is.
 */
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"
import * as Transferable from "effect/workers/Transferable"

type Link = NonNullable<SchemaAST.AST["encoding"]>[number]
type GetLink = (typeParameters: ReadonlyArray<Schema.Top>) => Link | undefined

/** The link a `Transferable` field's declaration gives as its JSON form: the value as it is. */
const passthroughLink = (SchemaAST.toEncoded(Transferable.Uint8Array.ast).annotations!.toCodecJson as GetLink)([])

/** The JSON form of `Schema.Uint8Array`: a base64 string. */
const base64 = Schema.Uint8Array.ast.annotations!.toCodecJson as GetLink

const isTransferable = (ast: SchemaAST.Declaration): boolean => {
  const getLink = ast.annotations?.toCodecJson
  return (
    typeof getLink === "function" && ast.typeParameters.length === 0 && (getLink as GetLink)([]) === passthroughLink
  )
}

const isBytes = (ast: SchemaAST.Declaration): boolean =>
  (ast.annotations?.representation as { readonly id?: unknown } | undefined)?.id === "effect/schema/Uint8Array"

/** `ast` with other fields: the same prototype and fields, as the AST's own copies are made. */
const copy = <A extends SchemaAST.AST>(ast: A, changes: Partial<A>): A =>
  Object.assign(Object.create(Object.getPrototypeOf(ast)), ast, changes)

/** The runtime shape of a node with children (the AST rebuilds itself with them mapped, keeping the rest). */
interface Recurring {
  readonly recur: (f: (ast: SchemaAST.AST) => SchemaAST.AST) => SchemaAST.AST
}

const rewritten = new WeakMap<SchemaAST.AST, SchemaAST.AST>()

const rewrite = (ast: SchemaAST.AST): SchemaAST.AST => {
  const known = rewritten.get(ast)
  if (known !== undefined) return known
  const out = rewriteNode(ast)
  rewritten.set(ast, out)
  return out
}

const rewriteNode = (ast: SchemaAST.AST): SchemaAST.AST => {
  if (ast.encoding !== undefined) {
    // The JSON form is derived from the end of the chain.
    const last = ast.encoding[ast.encoding.length - 1]!
    const to = rewrite(last.to)
    return to === last.to
      ? ast
      : copy(ast, { encoding: [...ast.encoding.slice(0, -1), new SchemaAST.Link(to, last.transformation)] } as never)
  }
  switch (ast._tag) {
    case "Declaration": {
      if (isTransferable(ast)) {
        // Bytes: base64. Anything else: no JSON form of its own, so the value must be JSON.
        return copy(ast, { annotations: { ...ast.annotations, toCodecJson: isBytes(ast) ? base64 : undefined } })
      }
      return ast.typeParameters.length === 0 ? ast : (ast as unknown as Recurring).recur(rewrite)
    }
    case "Objects":
    case "Arrays":
    case "Union":
    case "Suspend":
      return (ast as unknown as Recurring).recur(rewrite)
    default:
      return ast
  }
}

/**
 * The JSON codec of `schema` on the wire: `Schema.toCodecJson`, with the
 * bytes of its `Transferable` fields as base64 strings.
 */
export const toJsonWire = <S extends Schema.Top>(schema: S): Schema.toCodecJson<S> => {
  const ast = rewrite(schema.ast)
  return Schema.toCodecJson(ast === schema.ast ? schema : (Schema.make(ast) as unknown as S))
}
