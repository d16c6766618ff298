import type { Location } from './backend.js'
import type { Holder, Scope } from '../api/types.js'

/** A record's scope: a local lock's, or a PostgreSQL lock's `'cluster'`. */
export type RecordScope = Scope | 'cluster'

/** What a record says of the lock it belongs to. */
export type RecordLock = Pick<Location, 'name' | 'key'> & { scope: RecordScope }

// The record's text up to its time, for the last host asked for: one host
// per process, in practice.
let prefix = ''
let prefixHost: string | undefined

/**
 * The time of a record to be stamped later: the Linux waiting thread, which
 * takes the lock while the event loop may be busy, writes the record itself
 * at that moment, with its `startedAt` ("1970-01-01T00:00:00.000Z", the
 * record of this time) replaced by the time of acquisition in the same
 * format (native/posix/wait.cc). Only the time is written there, nothing of
 * the record's shape.
 */
export const UNSTAMPED = 0

/**
 * The holder record, JSON text of a `Holder`, written beside a local lock or
 * in a PostgreSQL lock's table. `host` is the holder's host name (the local
 * backends read it from the addon: a speed measure, ./speed.ts). `pid` is
 * another process only for a cluster worker's `Lock`, which stands for its
 * primary's hold. `"ready":true` is written only once the holder is ready: a
 * record without it (every record of earlier versions) reads as not ready,
 * and a starting holder's record stays as it was.
 */
export function makeRecord(host: string, loc: RecordLock, data: string | undefined, at: number, pid = process.pid, ready = false): string {
  if (host !== prefixHost) {
    prefix = `,"hostname":${JSON.stringify(host)},"startedAt":"`
    prefixHost = host
  }
  return (
    `{"pid":${pid}${prefix}${new Date(at).toISOString()}",` +
    `"name":${JSON.stringify(loc.name)},"scope":"${loc.scope}"` +
    (loc.key === undefined ? '' : `,"key":${JSON.stringify(loc.key)}`) +
    (data === undefined ? '' : `,"data":${data}`) +
    (ready ? ',"ready":true' : '') +
    '}'
  )
}

// The last record made for each location: a loop of tryLock/release on one
// lock within a millisecond writes the same record (a speed measure, see
// ./speed.ts).
const lastRecord = new WeakMap<Location, { data: string | undefined; ms: number; text: string }>()

/** `makeRecord(host, loc, data, ms)`, remembered per location for the last millisecond. */
export function recordAt(host: string, loc: Location, data: string | undefined, ms: number): string {
  const last = lastRecord.get(loc)
  if (last !== undefined && last.ms === ms && last.data === data) return last.text
  const text = makeRecord(host, loc, data, ms)
  if (last === undefined) lastRecord.set(loc, { data, ms, text })
  else {
    last.data = data
    last.ms = ms
    last.text = text
  }
  return text
}

/** A record's fields, of a local lock or a PostgreSQL one. */
export type RecordHolder<S extends RecordScope = RecordScope> = Omit<Holder, 'scope'> & { scope: S }

/**
 * Reads a record back. A record is information, not proof (any process that
 * can write the file could have written it): it is shaped into a `Holder`
 * only if it is well-formed and names this lock (without `loc`: a lock of
 * this machine).
 */
export function parseRecord(text: string | null | undefined, loc?: { name: string; scope: Scope }): Holder | undefined
export function parseRecord(text: string | null | undefined, loc: { name: string; scope: 'cluster' }): RecordHolder<'cluster'> | undefined
export function parseRecord(text: string | null | undefined, loc: { name: string; scope: RecordScope }): RecordHolder | undefined
export function parseRecord(text: string | null | undefined, loc?: { name: string; scope: RecordScope }): RecordHolder | undefined {
  if (typeof text !== 'string') return undefined
  let holder: RecordHolder | undefined
  if (text === lastText) holder = lastHolder
  else {
    holder = parseHolder(text)
    // Failed tries against one holder read the same record again and again:
    // the last one without `data` (a nested object callers could mutate) is
    // kept, and every caller gets its own copy (a speed measure: ./speed.ts).
    if (holder === undefined || holder.data === undefined) {
      lastText = text
      lastHolder = holder
    }
  }
  if (holder === undefined) return undefined
  if (loc === undefined ? holder.scope === 'cluster' : holder.name !== loc.name || holder.scope !== loc.scope) return undefined
  return holder === lastHolder ? { ...holder } : holder
}

let lastText: string | undefined
let lastHolder: RecordHolder | undefined

function parseHolder(text: string): RecordHolder | undefined {
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
  if (scope !== 'user' && scope !== 'machine' && scope !== 'cluster') return undefined
  const holder: RecordHolder = { pid, hostname: host, startedAt, name, scope }
  if (typeof key === 'string') holder.key = key
  if (data !== null && typeof data === 'object' && !Array.isArray(data)) holder.data = data as Record<string, unknown>
  if (ready === true) holder.ready = true
  return holder
}

/**
 * Windows: the record with the creation time of the process it names, by
 * which a reader tells that process from a later one with its pid.
 */
export function withProcessStart(record: string, start: string): string {
  return JSON.stringify({ ...(JSON.parse(record) as object), processStartTime: start })
}

/** A record's pid and the process creation time it carries (Windows); null when it is no record. */
export function recordedProcess(text: string): { pid: number; start: string | undefined } | null {
  let r: { pid?: unknown; processStartTime?: unknown }
  try {
    r = JSON.parse(text) as typeof r
  } catch {
    return null
  }
  if (r === null || typeof r !== 'object' || typeof r.pid !== 'number' || !Number.isInteger(r.pid) || r.pid <= 0) return null
  return { pid: r.pid, start: typeof r.processStartTime === 'string' ? r.processStartTime : undefined }
}
