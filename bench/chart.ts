/**
 * The hand-written SVG chart of the out-of-process throughput, no
 * dependencies: on a log scale, one horizontal bar per variant (the median tasks per second,
 * a whisker from the lowest to the highest round), coloured by family, with
 * the goal (2 × poolifier, task queue off) as a dashed line. The output
 * depends only on its input (numbers are printed with fixed precision).
 */
import type { Family } from "./wireVariant.ts"

/** One bar. */
export interface Bar {
  readonly name: string
  readonly family: Family
  readonly median: number
  readonly low: number
  readonly high: number
}

/** What the chart shows. */
export interface ThroughputChart {
  readonly title: string
  readonly subtitle: string
  readonly bars: ReadonlyArray<Bar>
  /** Where the dashed goal line stands, in tasks per second, and what it says. */
  readonly goal: { readonly value: number; readonly label: string }
}

const colours: Record<Family, string> = { library: "#d95f02", peer: "#1f78b4", bare: "#7f7f7f" }
const legend: Record<Family, string> = {
  library: "effect-worker-pool",
  peer: "peer pools",
  bare: "bare transports, no pool"
}

const fmt = (x: number) => (Math.round(x * 10) / 10).toFixed(1)

const escape = (text: string) =>
  text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

/** Ticks at 1, 2, 5 × 10^k within [low, high]. */
const logTicks = (low: number, high: number): Array<number> => {
  const ticks: Array<number> = []
  for (let k = Math.floor(Math.log10(low)); k <= Math.ceil(Math.log10(high)); k++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** k
      if (v >= low * 0.999 && v <= high * 1.001) ticks.push(v)
    }
  }
  return ticks
}

const thousands = (n: number) => Math.round(n).toLocaleString("en-US")

/** A tick's label: 500, 2k, 1M. */
const compact = (n: number) => (n >= 1e6 ? `${n / 1e6}M` : n >= 1e3 ? `${n / 1e3}k` : String(n))

/** The chart as an SVG document. */
export const throughputChart = (input: ThroughputChart): string => {
  const left = 360
  const right = 120
  const top = 78
  const rowHeight = 24
  const width = 980
  const plotWidth = width - left - right
  const plotHeight = input.bars.length * rowHeight
  const height = top + plotHeight + 56
  // A log scale: a ratio between two variants is the same distance wherever they stand.
  const low = 10 ** Math.floor(Math.log10(Math.min(...input.bars.map((bar) => bar.low)) / 1.5))
  const high = 10 ** Math.ceil(Math.log10(Math.max(input.goal.value, ...input.bars.map((bar) => bar.high))))
  const x = (v: number) =>
    left + ((Math.log(Math.max(v, low)) - Math.log(low)) / (Math.log(high) - Math.log(low))) * plotWidth
  const out: Array<string> = []
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif" font-size="12">`
  )
  out.push(`<title>${escape(input.title)}</title>`)
  out.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`)
  out.push(`<text x="16" y="24" font-size="16" font-weight="600">${escape(input.title)}</text>`)
  out.push(`<text x="16" y="42" fill="#555">${escape(input.subtitle)}</text>`)
  let lx = 16
  for (const family of ["library", "peer", "bare"] as const) {
    out.push(`<rect x="${lx}" y="52" width="12" height="12" fill="${colours[family]}"/>`)
    out.push(`<text x="${lx + 17}" y="62">${escape(legend[family])}</text>`)
    lx += 30 + legend[family].length * 7
  }
  out.push(`<line x1="${lx}" y1="58" x2="${lx + 24}" y2="58" stroke="#b00" stroke-dasharray="5 3" stroke-width="1.5"/>`)
  out.push(`<text x="${lx + 30}" y="62">${escape(input.goal.label)}</text>`)
  for (const t of logTicks(low, high)) {
    const tx = fmt(x(t))
    out.push(`<line x1="${tx}" y1="${top}" x2="${tx}" y2="${top + plotHeight}" stroke="#e4e4e4"/>`)
    out.push(`<text x="${tx}" y="${top + plotHeight + 16}" text-anchor="middle" fill="#444">${compact(t)}</text>`)
  }
  out.push(
    `<text x="${fmt(left + plotWidth / 2)}" y="${top + plotHeight + 36}" text-anchor="middle">tasks per second, log scale (median of the rounds; whiskers: lowest to highest round)</text>`
  )
  input.bars.forEach((bar, i) => {
    const y = top + i * rowHeight
    const mid = y + rowHeight / 2
    out.push(`<g><title>${escape(`${bar.name}: ${thousands(bar.median)} tasks/s`)}</title>`)
    out.push(`<text x="${left - 8}" y="${fmt(mid + 4)}" text-anchor="end">${escape(bar.name)}</text>`)
    out.push(
      `<rect x="${left}" y="${y + 4}" width="${fmt(x(bar.median) - left)}" height="${rowHeight - 8}" fill="${colours[bar.family]}"/>`
    )
    out.push(
      `<line x1="${fmt(x(bar.low))}" y1="${fmt(mid)}" x2="${fmt(x(bar.high))}" y2="${fmt(mid)}" stroke="#222" stroke-width="1.2"/>`
    )
    out.push(`<text x="${fmt(x(bar.high) + 6)}" y="${fmt(mid + 4)}" fill="#222">${thousands(bar.median)}</text>`)
    out.push(`</g>`)
  })
  const gx = fmt(x(input.goal.value))
  out.push(
    `<line x1="${gx}" y1="${top - 4}" x2="${gx}" y2="${top + plotHeight}" stroke="#b00" stroke-dasharray="5 3" stroke-width="1.5"/>`
  )
  out.push(`<line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotHeight}" stroke="#444"/>`)
  out.push(`</svg>`)
  return `${out.join("\n")}\n`
}
