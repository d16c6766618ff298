// The results table, as aligned text for the terminal and as Markdown for
// docs/benchmarks.md. One row per subject; ns-per-operation cells carry their ratio
// to floor-min measured in the same run.

// instance-lock's guard taken through `import` (bench/guard.mjs): a row of
// its own, with the guard columns only.
export const ESM_GUARD = 'instance-lock (import)'

export const COLUMNS = [
  { key: 'cycle', title: 'acquire+release ns', unit: 'ns' },
  { key: 'failedTry', title: 'failed try ns', unit: 'ns' },
  { key: 'crash', title: 'crash → held ms', unit: 'ms' },
  { key: 'handoff', title: 'handoff ms', unit: 'ms' },
  { key: 'guard', title: 'guard require ms', unit: 'ms' },
  { key: 'guardWall', title: 'guard wall Δ ms', unit: 'ms' },
  { key: 'idle', title: 'idle waiter CPU %', unit: '%' },
  { key: 'contention', title: 'contention acq/s', unit: '/s' },
  { key: 'violations', title: 'violations', unit: '' },
]

export function fmt(x, unit) {
  if (x === undefined || Number.isNaN(x)) return '—'
  if (unit === 'ns' || unit === '/s') return Math.round(x).toLocaleString('en-US')
  if (unit === '%') return x.toFixed(x < 10 ? 2 : 1)
  if (unit === 'ms') return x >= 100 ? Math.round(x).toLocaleString('en-US') : x >= 10 ? x.toFixed(1) : x.toFixed(x >= 1 ? 2 : 3)
  return String(x)
}

const ratio = (r) => (r >= 10 ? Math.round(r) : r.toFixed(r >= 3 ? 1 : 2)) + '×'

/** The cell values of one subject, as displayed. */
export function cells(report, subject) {
  const r = report.results
  const perOp = (k) => (r[k]?.[subject] ? `${fmt(r[k][subject].median, 'ns')} (${ratio(r[k][subject].ratio)})` : '—')
  const get = (k, unit, field = 'median') => fmt(r[k]?.[subject]?.[field], unit)
  return [
    perOp('cycle'),
    perOp('failedTry'),
    get('crash', 'ms'),
    get('handoff', 'ms'),
    get('guard', 'ms'),
    get('guard', 'ms', 'wallOverBare'),
    get('idle', '%'),
    get('contention', '/s'),
    r.contention?.[subject] ? String(r.contention[subject].violations) : '—',
  ]
}

export function subjects(report) {
  const out = Object.keys(report.results.cycle)
  if (report.results.guard?.[ESM_GUARD] !== undefined) out.splice(out.indexOf('instance-lock') + 1, 0, ESM_GUARD)
  return out
}

export function renderTable(report) {
  const header = ['', ...COLUMNS.map((c) => c.title)]
  const rows = subjects(report).map((s) => [s, ...cells(report, s)])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const line = (r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')
  const text = [line(header), widths.map((w) => '─'.repeat(w)).join('  '), ...rows.map(line)].join('\n') + '\n'
  const md = [`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i === 0 ? ':--' : '--:')).join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n') + '\n'
  const note =
    perRound('contention', 'rate', report.results.contention, (v) => v.rates.length) +
    perRound('guard require', 'time', report.results.guard, (v) => v.samples.length) +
    importVsRequire(report.results.guard) +
    messagesNote(report.results.messages) +
    postgresNote(report.results.postgres)
  return { text: text + note, markdown: md + note }
}

// The guard through `import` against the guard through `require`, each as
// the whole process over Node starting and exiting in the same module type.
function importVsRequire(guard) {
  const esm = guard?.[ESM_GUARD]
  const cjs = guard?.['instance-lock']
  if (esm === undefined || cjs?.wallOverBareRatio === undefined) return ''
  return (
    `\nguard through import: the whole process ${esm.wallOverBareRatio.toFixed(2)}× an empty .mjs's ` +
    `(through require: ${cjs.wallOverBareRatio.toFixed(2)}× an empty .cjs's); ` +
    `import's process over require's in the same round: ${esm.overRequire.toFixed(2)}× (median of ${esm.wallSamples.length} rounds)\n`
  )
}

// The machine's speed drifts between rounds, so some measures also give
// instance-lock's figure over each peer's within the same round (run.mjs:
// `ownOverThis`); a report from before a measure had one shows nothing.
function perRound(title, what, results, rounds) {
  const peers = Object.entries(results ?? {}).filter(([lib, v]) => lib !== 'instance-lock' && v.ownOverThis !== undefined)
  if (peers.length === 0) return ''
  return (
    `\n${title}, instance-lock's ${what} over each peer's in the same round (median of ${rounds(results['instance-lock'])} rounds): ` +
    peers.map(([lib, v]) => `${lib} ${v.ownOverThis.toFixed(2)}×`).join(', ') +
    '\n'
  )
}

// A message's round trip (send() → the handler's reply) beside a bare Unix
// socket's, in the same run.
function messagesNote(m) {
  if (m === undefined) return ''
  return `\nmessage round trip (median of ${m.n}): send() → reply ${m.sendMs.toFixed(3)} ms; bare Unix socket ${m.bareMs.toFixed(3)} ms; ${m.ratio.toFixed(2)}× (goal ≤ 2×)\n`
}

// instance-lock/postgres beside bare pg (the floor) and advisory-lock, on one
// embedded server in the same run (bench/postgres.mjs).
function postgresNote(p) {
  if (p === undefined) return ''
  if (p.error !== undefined) return `\ninstance-lock/postgres: not measured (${p.error})\n`
  return `\ninstance-lock/postgres, one embedded server on loopback (medians):\n\n${p.table}\n\ncycle: ${p.cycleRatio.toFixed(2)}× the bare-pg floor (goal ≤ 1.5×); handoff goal within 2 ms; kill → held goal within 1 s\n`
}
