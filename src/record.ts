import os from 'node:os'
import type { Location } from './backend.js'
import type { Holder } from './types.js'

let prefix: string | undefined
let isoMs = NaN
let iso = ''

/** `new Date(ms).toISOString()`, computed once per millisecond (it costs more than a lock's system calls). */
export function isoAt(ms: number): string {
  if (ms !== isoMs) {
    iso = new Date(ms).toISOString()
    isoMs = ms
  }
  return iso
}

/**
 * The holder record written beside the lock: JSON text of a `Holder`. `pid`
 * is another process only for `instance-lock run`, whose COMMAND inherits the
 * lock and is the process to stop.
 */
export function makeRecord(loc: Location, data: string | undefined, startedAt: string, pid = process.pid): string {
  prefix ??= `,"hostname":${JSON.stringify(os.hostname())},"startedAt":"`
  return (
    `{"pid":${pid}${prefix}${startedAt}",` +
    `"name":${JSON.stringify(loc.name)},"scope":"${loc.scope}"` +
    (loc.key === undefined ? '' : `,"key":${JSON.stringify(loc.key)}`) +
    (data === undefined ? '' : `,"data":${data}`) +
    '}'
  )
}

/**
 * Reads a record back. A record is information, not proof (any process that
 * can write the file could have written it): it is shaped into a `Holder`
 * only if it is well-formed and names this lock.
 */
export function parseRecord(text: string | null | undefined, loc?: Pick<Location, 'name' | 'scope'>): Holder | undefined {
  if (typeof text !== 'string') return undefined
  let r: Record<string, unknown>
  try {
    r = JSON.parse(text)
  } catch {
    return undefined
  }
  if (r === null || typeof r !== 'object') return undefined
  const { pid, hostname: host, startedAt, name, scope, key, data } = r
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0) return undefined
  if (typeof host !== 'string' || typeof startedAt !== 'string' || typeof name !== 'string') return undefined
  if (scope !== 'user' && scope !== 'machine') return undefined
  if (loc !== undefined && (name !== loc.name || scope !== loc.scope)) return undefined
  const holder: Holder = { pid, hostname: host, startedAt, name, scope }
  if (typeof key === 'string') holder.key = key
  if (data !== null && typeof data === 'object' && !Array.isArray(data)) holder.data = data as Record<string, unknown>
  return holder
}
