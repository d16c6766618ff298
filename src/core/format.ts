import { describeLock, type HeldAt } from './lock.js'
import type { Holder, LockStatus, StopResult } from '../api/types.js'
import type { ClusterHolder, ClusterLockStatus, ClusterStopResult } from '../backends/postgres/types.js'

/**
 * Every message meant for a person, from the guard and the command line:
 * worded in one place, so that they stay alike.
 */

/**
 * The one message the guard prints when another instance is running. `dir`:
 * the lock directory the caller chose, which the stop command must name too.
 */
/**
 * What the guard prints when the lock is held: who holds it, and the command
 * that stops it (`dir`: the directory the lock is in, when not the scope's
 * own; a PostgreSQL lock's command names `postgresUrl`, or the environment
 * variable when the URL is not known).
 */
export function conflictMessage(
  loc: Pick<HeldAt, 'name' | 'key' | 'scope'>,
  holder: Pick<Holder, 'pid' | 'hostname' | 'startedAt' | 'data'> | undefined,
  dir?: string,
  postgresUrl?: string,
): string {
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
  lines.push(`  stop it with: ${stopCommand(loc, dir, postgresUrl)}`)
  return lines.join('\n') + '\n'
}

function stopCommand(loc: Pick<HeldAt, 'name' | 'key' | 'scope'>, dir: string | undefined, postgresUrl: string | undefined): string {
  const args = ['npx', 'instance-lock', 'stop', loc.name]
  if (loc.scope === 'machine') args.push('--scope', 'machine')
  if (loc.key !== undefined) args.push('--key', shellQuote(loc.key))
  if (dir !== undefined) args.push('--dir', shellQuote(dir))
  if (loc.scope === 'cluster') args.push('--postgres', postgresUrl === undefined ? '"$INSTANCE_LOCK_POSTGRES"' : shellQuote(postgresUrl))
  return args.join(' ')
}

export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`
}

function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`
  return `${Math.floor(s / 86400)}d${String(Math.floor(s / 3600) % 24).padStart(2, '0')}h`
}

/** `status NAME` and `wait`: one lock, as a person reads it. */
export function statusText(s: LockStatus): string {
  const what = describeLock({ name: s.name, key: s.key, scope: s.scope })
  if (!s.locked) return `${what} is not held\n`
  const h = s.holder
  if (h === undefined) return `${what} is held (its holder record is unreadable)\n  file: ${s.path}\n`
  const lines = [`${what} is held by pid ${h.pid} on ${h.hostname}, since ${h.startedAt}${age(h, ' (', ' ago)')}`]
  lines.push(`  state: ${readiness(h)}`)
  if (h.data !== undefined && Object.keys(h.data).length > 0) lines.push(`  data: ${dataText(h.data)}`)
  lines.push(`  file: ${s.path}`)
  return lines.join('\n') + '\n'
}

/** `status`: the locks of a scope, one row each. */
export function statusTable(all: LockStatus[], withScope: boolean): string {
  const rows = [['NAME', 'KEY', 'STATE', 'READY', 'PID', 'STARTED', 'AGE', 'DATA']]
  if (withScope) rows[0]!.splice(2, 0, 'SCOPE')
  for (const s of all) {
    const h = s.locked ? s.holder : undefined
    rows.push([
      s.name,
      s.key ?? '-',
      ...(withScope ? [s.scope] : []),
      s.locked ? 'held' : 'free',
      h === undefined ? (s.locked ? '?' : '-') : readiness(h),
      h === undefined ? (s.locked ? '?' : '-') : String(h.pid),
      h === undefined ? '-' : h.startedAt.replace(/\.\d+Z$/, 'Z'),
      h === undefined ? '-' : age(h, '', '') || '-',
      h?.data === undefined || Object.keys(h.data).length === 0 ? '-' : dataText(h.data),
    ])
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  return (
    rows
      .map((r) =>
        r
          .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  )
}

/** `ready` once the holder called ready() (or run --ready started COMMAND), `starting` until then. */
function readiness(h: Holder): string {
  return h.ready === true ? 'ready' : 'starting'
}

function age(h: Holder, before: string, after: string): string {
  const t = Date.parse(h.startedAt)
  return Number.isNaN(t) ? '' : `${before}${formatAge(Date.now() - t)}${after}`
}

function dataText(data: Record<string, unknown>): string {
  return Object.entries(data)
    .map(([k, v]) => `${k}=${typeof v === 'string' && /^[\w./:@%+-]*$/.test(v) ? v : JSON.stringify(v)}`)
    .join(' ')
}

/**
 * What `stop` reports: on stdout when the lock is free, on stderr when it is
 * not. `how`: the timeout and signal the stop was asked for.
 */
export function stopReport(what: string, r: StopResult, how: { timeout: number; signal: string }): { out?: string; err?: string } {
  const { timeout, signal } = how
  if (r.unverified !== undefined) {
    const rec = r.holder === undefined ? '' : ` (its record names pid ${r.holder.pid} on ${r.holder.hostname})`
    const why =
      r.unverified === 'unseen'
        ? 'The holder may run as another user or in another pid namespace (a container): run stop there, or as root.'
        : `This system cannot tell which process holds a flock.${r.holder === undefined ? '' : ` If pid ${r.holder.pid} is the holder, stop it yourself: kill ${r.holder.pid}`}`
    return { err: `${what} is held${rec}, but no process could be verified as its holder, so nothing was signalled. ${why}\n` }
  }
  if (!r.stopped) {
    return {
      err: r.forced
        ? `${what} is still held by pid ${r.pid} even after SIGKILL: the process may be stuck in the kernel (check its state with: ps -o stat= -p ${r.pid})\n`
        : `${what} is still held by pid ${r.pid} ${timeout} ms after ${signal}. Give it longer with --timeout MS, or kill it with --force.\n`,
    }
  }
  if (r.successor !== undefined) {
    // The instance is stopped, but the lock is not free: another holds it.
    return {
      err:
        r.pid === undefined
          ? `${what} changed hands as it was looked at: pid ${r.successor} took the lock; nothing was signalled\n`
          : `${what}: pid ${r.pid} ${r.forced ? 'was killed' : 'let go'}, and another instance (pid ${r.successor}) took the lock at once; it was left alone\n`,
    }
  }
  return {
    out:
      r.pid === undefined
        ? `${what} is not held; nothing to stop\n`
        : `${what} is free: pid ${r.pid} ${r.forced ? `was killed (SIGKILL) after ${timeout} ms` : `exited on ${signal}`}\n`,
  }
}

// The PostgreSQL backend's locks (`--postgres`).

function describeCluster(s: { name: string; key?: string | undefined }): string {
  return `Lock "${s.name}"${s.key === undefined ? '' : ` for ${JSON.stringify(s.key)}`}`
}

function clusterHolderText(h: ClusterHolder): string {
  const data =
    h.data === undefined || Object.keys(h.data).length === 0
      ? ''
      : `\n  data: ${Object.entries(h.data)
          .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
          .join(' ')}`
  return `pid ${h.pid} on ${h.hostname} (server process ${h.backendPid}), since ${h.startedAt}, ${h.ready === true ? 'ready' : 'starting'}${data}`
}

/** `status --postgres`: one lock of a database, as a person reads it. */
export function clusterStatusText(s: ClusterLockStatus): string {
  if (!s.locked) return `${describeCluster(s)} is not held\n`
  return s.holder === undefined ? `${describeCluster(s)} is held by a session that left no record of it\n` : `${describeCluster(s)} is held by ${clusterHolderText(s.holder)}\n`
}

/** What `stop --postgres` reports: on stdout when the lock is free, on stderr when it is not. */
export function clusterStopReport(id: { name: string; key?: string | undefined }, r: ClusterStopResult, timeout: number): { out?: string; err?: string } {
  const what = describeCluster(id)
  const who = r.pid === undefined ? 'its holder' : `pid ${r.pid} on ${r.hostname}`
  if (!r.stopped) {
    return {
      err: `${what} is still held by ${who} ${timeout} ms after asking it to exit${r.forced ? ', even after its session was ended' : '. Give it longer with --timeout MS, or end its session with --force.'}\n`,
    }
  }
  return { out: r.pid === undefined && !r.forced ? `${what} is not held; nothing to stop\n` : `${what} is free: ${who} ${r.forced ? 'had its session ended' : 'exited'}\n` }
}
