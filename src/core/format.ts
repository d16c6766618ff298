import type { Location } from './backend.js'
import { describeLock } from './lock.js'
import type { Holder } from '../api/types.js'

/**
 * The one message the guard prints when another instance is running. `dir`:
 * the lock directory the caller chose, which the stop command must name too.
 */
export function conflictMessage(loc: Pick<Location, 'name' | 'key' | 'scope'>, holder: Holder | undefined, dir?: string): string {
  const lines = [`instance-lock: ${describeLock(loc).replace(/^Lock /, '')} is already running`]
  if (holder !== undefined) {
    const since = new Date(holder.startedAt)
    const age = Number.isNaN(since.getTime()) ? '' : ` (${formatAge(Date.now() - since.getTime())} ago)`
    lines[0] += ` as pid ${holder.pid} on ${holder.hostname}, since ${holder.startedAt}${age}`
    if (holder.data !== undefined && Object.keys(holder.data).length > 0) {
      lines.push(
        `  data: ${Object.entries(holder.data)
          .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
          .join(' ')}`,
      )
    }
  }
  lines.push(`  stop it with: ${stopCommand(loc, dir)}`)
  return lines.join('\n') + '\n'
}

function stopCommand(loc: Pick<Location, 'name' | 'key' | 'scope'>, dir?: string): string {
  const args = ['npx', 'instance-lock', 'stop', loc.name]
  if (loc.scope === 'machine') args.push('--scope', 'machine')
  if (loc.key !== undefined) args.push('--key', shellQuote(loc.key))
  if (dir !== undefined) args.push('--dir', shellQuote(dir))
  return args.join(' ')
}

export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`
}

export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`
  return `${Math.floor(s / 86400)}d${String(Math.floor(s / 3600) % 24).padStart(2, '0')}h`
}
