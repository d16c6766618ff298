// The results as an SVG chart: one panel per scenario, one bar per subject,
// log scale wherever the values span more than a decade (they often span
// two). Plain SVG text, no dependency.
import { fmt } from './table.mjs'

const PANELS = [
  { key: 'cycle', title: 'Uncontended acquire + release', unit: 'ns', note: 'ns/op, lower is better' },
  { key: 'failedTry', title: 'Failed try on a held lock', unit: 'ns', note: 'ns/op, lower is better' },
  { key: 'crash', title: 'Crash recovery (holder SIGKILLed)', unit: 'ms', note: 'ms until the waiter holds it' },
  { key: 'handoff', title: 'Handoff (holder releases)', unit: 'ms', note: 'ms until the waiter holds it' },
  { key: 'guard', title: 'Guard start-up: require + guard', unit: 'ms', note: 'ms, net of an empty require' },
  { key: 'idle', title: 'Idle waiter CPU', unit: '%', note: '% of one core' },
  { key: 'contention', title: 'Contention: 4 processes', unit: '/s', note: 'acquisitions/s, higher is better' },
]

const W = 1000
const PANEL_W = 480
const GAP = 40
const LABEL_W = 150
const VALUE_W = 120
const ROW_H = 20
const HEAD_H = 44

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

function color(subject) {
  if (subject === 'instance-lock') return '#2563eb'
  if (subject.startsWith('floor')) return '#374151'
  return '#a3a3a3'
}

function panel(report, p, x, y) {
  const data = report.results[p.key]
  const rows = Object.keys(report.results.cycle)
    .filter((s) => data?.[s] && Number.isFinite(data[s].median))
    .map((s) => ({ s, v: data[s].median, r: data[s].ratio }))
  const pos = rows.map((r) => r.v).filter((v) => v > 0)
  const hi = Math.max(...pos)
  const lo = Math.min(...pos)
  const log = hi / lo > 10
  const barMax = PANEL_W - LABEL_W - VALUE_W
  // On a log scale the bar starts half a decade under the smallest value,
  // so the smallest bar is still visible.
  const base = log ? lo / Math.sqrt(10) : 0
  const len = (v) => {
    if (!(v > 0)) return 0
    return log ? (barMax * Math.log(v / base)) / Math.log(hi / base) : (barMax * v) / hi
  }
  const out = [`<text x="${x}" y="${y + 16}" class="t">${esc(p.title)}</text>`, `<text x="${x}" y="${y + 32}" class="n">${esc(p.note)}${log ? ', log scale' : ''}</text>`]
  rows.forEach((row, i) => {
    const ry = y + HEAD_H + i * ROW_H
    const w = Math.max(1, len(row.v))
    let label = fmt(row.v, p.unit)
    if (row.r !== undefined) label += ` (${row.r >= 10 ? Math.round(row.r) : row.r.toFixed(1)}×)`
    if (p.key === 'contention') label += `, ${data[row.s].violations} viol.`
    out.push(
      `<text x="${x + LABEL_W - 8}" y="${ry + 14}" class="l" text-anchor="end"${row.s === 'instance-lock' ? ' font-weight="bold"' : ''}>${esc(row.s)}</text>`,
      `<rect x="${x + LABEL_W}" y="${ry + 3}" width="${w.toFixed(1)}" height="${ROW_H - 6}" fill="${color(row.s)}"/>`,
      `<text x="${x + LABEL_W + w + 6}" y="${ry + 14}" class="v">${esc(label)}</text>`,
    )
  })
  return { svg: out.join('\n'), h: HEAD_H + rows.length * ROW_H }
}

export function renderChart(report) {
  const parts = []
  const m = report.machine
  let y = 64
  for (let i = 0; i < PANELS.length; i += 2) {
    const a = panel(report, PANELS[i], 20, y)
    const b = PANELS[i + 1] ? panel(report, PANELS[i + 1], 20 + PANEL_W + GAP, y) : { svg: '', h: 0 }
    parts.push(a.svg, b.svg)
    y += Math.max(a.h, b.h) + 24
  }
  const head = [
    `<text x="20" y="26" class="h">instance-lock and its peers: medians of one ${esc(report.mode)} run (${esc(report.command)})</text>`,
    `<text x="20" y="46" class="n">${esc(`${m.cpu}, ${m.memory}, ${m.os}, node ${m.node}; lock files on ${m.fs.bench}; ratios are to floor-min (C open + flock + close) in the same run; ${report.date.slice(0, 10)}`)}</text>`,
  ]
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y}" viewBox="0 0 ${W} ${y}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif">`,
    '<style>.h{font-size:16px;font-weight:600;fill:#111}.t{font-size:14px;font-weight:600;fill:#111}.n{font-size:11px;fill:#555}.l{font-size:12px;fill:#222}.v{font-size:11px;fill:#222}</style>',
    `<rect width="${W}" height="${y}" fill="#fff"/>`,
    ...head,
    ...parts,
    '</svg>',
    '',
  ].join('\n')
}
