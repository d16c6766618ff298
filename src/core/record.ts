import type { Location } from './backend.js'
import { native } from '../backends/addon.js'
import type { Holder } from '../api/types.js'

let prefix: string | undefined
let isoMs = NaN
let iso = ''

const pad2 = (n: number): string => (n < 10 ? '0' : '') + n

/**
 * `new Date(ms).toISOString()` for years 1970 to 9999, computed once per
 * millisecond (it costs more than a lock's system calls) and by arithmetic:
 * the first `toISOString()` of a process costs 0.7-0.9 ms, a sixth of a
 * guard's whole start-up. Used wherever a record is made (a Lock's `holder`,
 * `update()`), not only on acquisition. Days to a civil date as in H. Hinnant's
 * "chrono-compatible low-level date algorithms".
 */
export function isoAt(ms: number): string {
  if (ms !== isoMs) {
    const days = Math.floor(ms / 86_400_000)
    const t = ms - days * 86_400_000
    const z = days + 719_468
    const era = Math.floor(z / 146_097)
    const doe = z - era * 146_097
    const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365)
    const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100))
    const mp = Math.floor((5 * doy + 2) / 153)
    const day = doy - Math.floor((153 * mp + 2) / 5) + 1
    const month = mp < 10 ? mp + 3 : mp - 9
    const year = yoe + era * 400 + (month <= 2 ? 1 : 0)
    const msPart = t % 1000
    iso =
      `${year}-${pad2(month)}-${pad2(day)}T${pad2(Math.floor(t / 3_600_000))}:${pad2(Math.floor(t / 60_000) % 60)}:` +
      `${pad2(Math.floor(t / 1000) % 60)}.${msPart < 100 ? (msPart < 10 ? '00' : '0') : ''}${msPart}Z`
    isoMs = ms
  }
  return iso
}

/**
 * The holder record written beside the lock: JSON text of a `Holder`. `pid`
 * is another process only for a cluster worker's `Lock`, which stands for its
 * primary's hold. `"ready":true` is written only once the holder is ready: a
 * record without it (every record of earlier versions) reads as not ready,
 * and a starting holder's record stays as it was.
 */
export function makeRecord(loc: Location, data: string | undefined, startedAt: string, pid = process.pid, ready = false): string {
  prefix ??= `,"hostname":${JSON.stringify(hostName())},"startedAt":"`
  return (
    `{"pid":${pid}${prefix}${startedAt}",` +
    `"name":${JSON.stringify(loc.name)},"scope":"${loc.scope}"` +
    (loc.key === undefined ? '' : `,"key":${JSON.stringify(loc.key)}`) +
    (data === undefined ? '' : `,"data":${data}`) +
    (ready ? ',"ready":true' : '') +
    '}'
  )
}

let host: string | undefined

/**
 * os.hostname(), from the addon on Unix: loading node:os costs a tenth of a
 * guard's start-up. Read once: records name the host as it was then.
 */
export function hostName(): string {
  if (host === undefined) {
    const name = native.platform === 'posix' ? native.hostname() : undefined
    host = name ?? (require('node:os') as typeof import('node:os')).hostname()
  }
  return host
}

// The last record made for each location: a loop of tryLock/release on one
// lock within a millisecond writes the same record, and building it anew
// (and flattening it for the addon) is a measurable part of a cycle.
const lastRecord = new WeakMap<Location, { data: string | undefined; ms: number; text: string }>()

/** `makeRecord(loc, data, isoAt(ms))`, remembered per location for the last millisecond. */
export function recordAt(loc: Location, data: string | undefined, ms: number): string {
  const last = lastRecord.get(loc)
  if (last !== undefined && last.ms === ms && last.data === data) return last.text
  const text = makeRecord(loc, data, isoAt(ms))
  if (last === undefined) lastRecord.set(loc, { data, ms, text })
  else {
    last.data = data
    last.ms = ms
    last.text = text
  }
  return text
}

/**
 * Reads a record back. A record is information, not proof (any process that
 * can write the file could have written it): it is shaped into a `Holder`
 * only if it is well-formed and names this lock.
 */
export function parseRecord(text: string | null | undefined, loc?: Pick<Location, 'name' | 'scope'>): Holder | undefined {
  if (typeof text !== 'string') return undefined
  let holder: Holder | undefined
  if (text === lastText) holder = lastHolder
  else {
    holder = parseHolder(text)
    // Failed tries against one holder read the same record again and again:
    // the last one without `data` (a nested object callers could mutate) is
    // kept, and every caller gets its own copy.
    if (holder === undefined || holder.data === undefined) {
      lastText = text
      lastHolder = holder
    }
  }
  if (holder === undefined) return undefined
  if (loc !== undefined && (holder.name !== loc.name || holder.scope !== loc.scope)) return undefined
  return holder === lastHolder ? { ...holder } : holder
}

let lastText: string | undefined
let lastHolder: Holder | undefined

function parseHolder(text: string): Holder | undefined {
  let r: unknown
  try {
    r = JSON.parse(text)
  } catch {
    return undefined
  }
  if (r === null || typeof r !== 'object') return undefined
  const { pid, hostname: host, startedAt, name, scope, key, data, ready } = r as Record<string, unknown>
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0) return undefined
  if (typeof host !== 'string' || typeof startedAt !== 'string' || typeof name !== 'string') return undefined
  if (scope !== 'user' && scope !== 'machine') return undefined
  const holder: Holder = { pid, hostname: host, startedAt, name, scope }
  if (typeof key === 'string') holder.key = key
  if (data !== null && typeof data === 'object' && !Array.isArray(data)) holder.data = data as Record<string, unknown>
  if (ready === true) holder.ready = true
  return holder
}
