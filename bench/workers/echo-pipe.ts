/**
 * The bare pipe baseline: a child that reads JSON lines `{"id", "a", "b"}` on
 * stdin and answers `{"id", "r"}` on stdout. By default one write per answer;
 * with `--batch`, one write for the answers to all the lines of a chunk.
 */
const batch = process.argv.includes("--batch")
let rest = ""

process.stdin.setEncoding("utf8")
process.stdin.on("data", (chunk: string) => {
  const lines = (rest + chunk).split("\n")
  rest = lines.pop()!
  let out = ""
  for (const line of lines) {
    const { id, a, b } = JSON.parse(line) as { id: number; a: number; b: number }
    const answer = `${JSON.stringify({ id, r: a + b })}\n`
    if (batch) out += answer
    else process.stdout.write(answer)
  }
  if (out !== "") process.stdout.write(out)
})
