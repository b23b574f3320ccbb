/**
 * Hand-written SVG charts, no dependencies: per scenario, one panel per load,
 * and in each panel one column per mode showing p50, p99 and p99.9 latency on
 * a log scale, with the work-pulling p99 as a dashed reference line. The
 * output depends only on the results (numbers are printed with fixed
 * precision), so the same seed gives byte-identical files.
 */
import type { RunResult } from "./model.ts"

/** Colours per mode, in report order (the reference first); wraps around. */
const palette = ["#4d4d4d", "#d95f02", "#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#1f78b4"]

const fmt = (x: number) => (Math.round(x * 10) / 10).toFixed(1)

const escape = (text: string) =>
  text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

/** Ticks at 1, 2, 5 × 10^k within [low, high], or only 1 × 10^k over more than 2.5 decades. */
const logTicks = (low: number, high: number): Array<number> => {
  const ticks: Array<number> = []
  const mantissas = Math.log10(high / low) > 2.5 ? [1] : [1, 2, 5]
  for (let k = Math.floor(Math.log10(low)) - 1; k <= Math.ceil(Math.log10(high)) + 1; k++) {
    for (const m of mantissas) {
      const v = m * 10 ** k
      if (v >= low * 0.999 && v <= high * 1.001) ticks.push(Number(v.toPrecision(6)))
    }
  }
  return ticks
}

const tickLabel = (v: number) => (v >= 1 ? String(v) : v.toPrecision(1))

export interface ChartInput {
  readonly title: string
  readonly subtitle: string
  /** Mode labels in column order. */
  readonly modes: ReadonlyArray<string>
  readonly loads: ReadonlyArray<number>
  readonly results: ReadonlyArray<RunResult>
  readonly reference: string
}

export const chart = (input: ChartInput): string => {
  const { modes, loads, results } = input
  const find = (load: number, mode: string) => results.find((r) => r.load === load && r.mode === mode)
  const values = results.flatMap((r) => [r.latency.p50, r.latency.p99, r.latency.p999]).filter(Number.isFinite)
  const positive = values.filter((v) => v > 0)
  const niceDown = (v: number) => {
    const k = 10 ** Math.floor(Math.log10(v))
    return v / k >= 5 ? 5 * k : v / k >= 2 ? 2 * k : k
  }
  const niceUp = (v: number) => {
    const k = 10 ** Math.floor(Math.log10(v))
    return v / k <= 1 ? k : v / k <= 2 ? 2 * k : v / k <= 5 ? 5 * k : 10 * k
  }
  // Where requests time out, their counts are written at the foot of each
  // column, below the lowest marker.
  const showTimeouts = results.some((r) => r.timedOut > 0)
  const low = niceDown((positive.length === 0 ? 0.1 : Math.min(...positive)) / (showTimeouts ? 2.5 : 1))
  // Off-scale values (a queue that grew without bound) would squash every
  // other column: the axis stops at 10 × the reference's largest p99.9 and
  // such columns are cut at the top and labelled with their values.
  const referenceP999 = results
    .filter((r) => r.mode === input.reference)
    .map((r) => r.latency.p999)
    .filter(Number.isFinite)
  const cap = referenceP999.length === 0 ? Number.POSITIVE_INFINITY : niceUp(10 * Math.max(...referenceP999))
  const high = Math.min(cap, niceUp(positive.length === 0 ? 10 : Math.max(...positive) * 1.05))

  const columnWidth = 26
  const panelInner = Math.max(140, modes.length * columnWidth + 20)
  const panelGap = 24
  const left = showTimeouts ? 96 : 70
  const right = 20
  const top = 92
  const plotHeight = 260
  const bottom = 40
  const width = Math.max(800, left + loads.length * panelInner + (loads.length - 1) * panelGap + right)
  const legendRows = Math.ceil(modes.length / 5)
  const height = top + plotHeight + bottom + legendRows * 18 + 8
  const y = (v: number) =>
    top + plotHeight - ((Math.log(Math.min(v, high)) - Math.log(low)) / (Math.log(high) - Math.log(low))) * plotHeight
  const out: Array<string> = []
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif" font-size="12">`
  )
  out.push(`<title>${escape(input.title)}</title>`)
  out.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`)
  out.push(`<text x="${left}" y="22" font-size="16" font-weight="600">${escape(input.title)}</text>`)
  out.push(`<text x="${left}" y="40" fill="#555">${escape(input.subtitle)}</text>`)
  // Marker legend.
  const ly = 62
  out.push(`<circle cx="${left + 6}" cy="${ly - 4}" r="4" fill="#333"/>`)
  out.push(`<text x="${left + 14}" y="${ly}">p50</text>`)
  out.push(`<rect x="${left + 52}" y="${ly - 9}" width="9" height="9" fill="#333"/>`)
  out.push(`<text x="${left + 66}" y="${ly}">p99</text>`)
  out.push(
    `<path d="M ${left + 110} ${ly - 10} L ${left + 115} ${ly} L ${left + 105} ${ly} Z" fill="none" stroke="#333" stroke-width="1.5"/>`
  )
  out.push(`<text x="${left + 121}" y="${ly}">p99.9</text>`)
  out.push(
    `<line x1="${left + 172}" y1="${ly - 4}" x2="${left + 196}" y2="${ly - 4}" stroke="#333" stroke-dasharray="4 3"/>`
  )
  out.push(`<text x="${left + 202}" y="${ly}">${escape(input.reference)} p99</text>`)
  out.push(`<text x="${left + 330}" y="${ly}" fill="#b00">⚠ queue grows without bound</text>`)
  out.push(`<text x="${left + 520}" y="${ly}" fill="#333">▲ off scale (values written)</text>`)
  // Y axis label.
  out.push(
    `<text transform="translate(16 ${top + plotHeight / 2}) rotate(-90)" text-anchor="middle">latency (× mean service time, log scale)</text>`
  )
  const ticks = logTicks(low, high)
  loads.forEach((load, p) => {
    const x0 = left + p * (panelInner + panelGap)
    out.push(`<rect x="${x0}" y="${top}" width="${panelInner}" height="${plotHeight}" fill="#fafafa" stroke="#ccc"/>`)
    for (const t of ticks) {
      const ty = fmt(y(t))
      out.push(`<line x1="${x0}" y1="${ty}" x2="${x0 + panelInner}" y2="${ty}" stroke="#e4e4e4"/>`)
      if (p === 0) {
        out.push(`<text x="${x0 - 6}" y="${fmt(y(t) + 4)}" text-anchor="end" fill="#444">${tickLabel(t)}</text>`)
      }
    }
    out.push(
      `<text x="${fmt(x0 + panelInner / 2)}" y="${top + plotHeight + 18}" text-anchor="middle" font-weight="600">load ${Math.round(load * 100)} %</text>`
    )
    const reference = find(load, input.reference)
    if (reference !== undefined && Number.isFinite(reference.latency.p99)) {
      const ry = fmt(y(reference.latency.p99))
      out.push(`<line x1="${x0}" y1="${ry}" x2="${x0 + panelInner}" y2="${ry}" stroke="#333" stroke-dasharray="4 3"/>`)
    }
    if (showTimeouts) {
      if (p === 0) {
        out.push(
          `<text x="${x0 - 6}" y="${top + plotHeight - 6}" text-anchor="end" font-size="10" fill="#b00">timed out</text>`
        )
      }
      modes.forEach((mode, m) => {
        const r = find(load, mode)
        if (r === undefined) return
        const cx = x0 + 10 + columnWidth / 2 + m * ((panelInner - 20) / modes.length)
        out.push(
          `<text x="${fmt(cx)}" y="${top + plotHeight - 6}" text-anchor="middle" font-size="10" fill="#b00">${r.timedOut}</text>`
        )
      })
    }
    modes.forEach((mode, m) => {
      const r = find(load, mode)
      if (r === undefined) return
      const colour = palette[m % palette.length]!
      const cx = x0 + 10 + columnWidth / 2 + m * ((panelInner - 20) / modes.length)
      const x = fmt(cx)
      const { p50, p99, p999 } = r.latency
      if (!Number.isFinite(p50)) return
      out.push(
        `<g><title>${escape(`${mode} at load ${Math.round(load * 100)} %: p50 ${fmt(p50)}, p99 ${fmt(p99)}, p99.9 ${fmt(p999)}`)}</title>`
      )
      out.push(
        `<line x1="${x}" y1="${fmt(y(p50))}" x2="${x}" y2="${fmt(y(p999))}" stroke="${colour}" stroke-width="2"/>`
      )
      out.push(`<circle cx="${x}" cy="${fmt(y(p50))}" r="4.5" fill="${colour}"/>`)
      if (p99 <= high)
        out.push(`<rect x="${fmt(cx - 5)}" y="${fmt(y(p99) - 5)}" width="10" height="10" fill="${colour}"/>`)
      const ty = y(p999)
      if (p999 <= high) {
        out.push(
          `<path d="M ${x} ${fmt(ty - 6)} L ${fmt(cx + 5.5)} ${fmt(ty + 4)} L ${fmt(cx - 5.5)} ${fmt(ty + 4)} Z" fill="#fff" stroke="${colour}" stroke-width="1.8"/>`
        )
      } else {
        // Cut at the top: an arrow, and the values written down the column.
        out.push(
          `<path d="M ${x} ${top - 2} L ${fmt(cx + 5)} ${top + 8} L ${fmt(cx - 5)} ${top + 8} Z" fill="${colour}"/>`
        )
        const label = p99 > high ? `p99 ${Math.round(p99)}, p99.9 ${Math.round(p999)}` : `p99.9 ${Math.round(p999)}`
        out.push(
          `<text transform="translate(${fmt(cx + 5)} ${top + 12}) rotate(90)" font-size="11" fill="${colour}">${label} ↑</text>`
        )
      }
      if (r.queue.grows) {
        out.push(
          `<text x="${x}" y="${fmt(p999 > high ? top - 12 : ty - 10)}" text-anchor="middle" fill="#b00" font-size="13">⚠</text>`
        )
      }
      out.push(`</g>`)
    })
  })
  // Mode legend.
  const legendTop = top + plotHeight + 36
  modes.forEach((mode, m) => {
    const lx = left + (m % 5) * 170
    const lyy = legendTop + Math.floor(m / 5) * 18
    out.push(`<rect x="${lx}" y="${lyy - 9}" width="12" height="12" fill="${palette[m % palette.length]}"/>`)
    out.push(`<text x="${lx + 17}" y="${lyy + 1}">${escape(mode)}</text>`)
  })
  out.push(`</svg>`)
  return `${out.join("\n")}\n`
}
