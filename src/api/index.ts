import { resolve } from 'node:path'
import { isHeld } from '../core/backend.js'
import type { Location } from '../core/backend.js'
import { LockedError, abortError, fromNative } from '../core/errors.js'
import { hostName, keyHash } from '../core/speed.js'
import { locateIdentity } from '../core/locate.js'
import { Lock, locationOf, lockedError, newLock, registry } from '../core/lock.js'
import { backend } from '../backends/index.js'
import { local } from './holding.js'
import { heldByPrimary } from '../core/cluster.js'
import { DEFAULT_TIMEOUT, replaceHolder } from './stop.js'
import { conflictMessage } from '../core/format.js'
import { statusAt, statusOf } from './status.js'
import { current } from '../core/holder.js'
import { makeRecord, parseRecord, recordAt } from '../core/record.js'
import type { ForwardOptions, GuardOptions, Holder, ListOptions, LockOptions, LockStatus, ReplaceOptions, Scope, SendOptions, WaitOptions } from './types.js'
import { checkDir, checkExitCode, checkIdentity, checkOnLocked, checkOptionsObject, checkScope, checkSignal, checkTimeout } from './validate.js'
import { invalidArgType } from '../core/errors.js'
import { loadMessages } from '../messages/load.js'
import type { InstanceMessage, MessageHandler } from '../messages/types.js'

export { Lock, LockedError }
export type { ForwardOptions, GuardOptions, Holder, ListOptions, LockOptions, LockStatus, ReplaceOptions, Scope, SendOptions, WaitOptions }
export type { InstanceMessage, MessageHandler }
export type { StopOptions, StopResult, WaitForOptions } from './types.js'
export { stop } from './stop.js'
export { waitFor } from './wait-for.js'

/**
 * The `Lock`, or the `LockedError` to throw. Returned, not thrown: V8 tiers a
 * function up as it returns, so code that always ends in a throw (a loop of
 * failed tries) would stay in the interpreter, without even type feedback.
 * Only the public functions throw.
 */
function acquireNow(loc: Location, data: string | undefined): Lock | LockedError {
  const own = registry.get(loc.id)
  if (own !== undefined) return lockedError(loc, own.holder)
  const now = Date.now()
  const r = backend.acquire(loc, recordAt(hostName(), loc, data, now))
  if (isHeld(r)) return lockedError(loc, current(loc, parseRecord(r.record, loc), now))
  return newLock(local, loc, r, new Date(now), data, (r as { recovered?: boolean }).recovered === true)
}

function tryAcquire(name: string, options: LockOptions | undefined): Lock | LockedError {
  const id = checkIdentity(name, options)
  return acquireNow(locateIdentity(id), id.data)
}

/**
 * Takes the lock now or throws `LockedError` (`code: 'ELOCKED'`, with the
 * holder). Never waits. A lock this process already holds is refused too.
 *
 * @example
 * const lock = tryLock('db-migrate', { key: './data/app.sqlite' })
 * try { await migrate() } finally { lock.release() }
 */
export function tryLock(name: string, options?: LockOptions): Lock {
  const r = tryAcquire(name, options)
  if (r instanceof Error) throw r
  return r
}

/**
 * Waits until the lock is free and takes it. Rejects with `LockedError`
 * after `timeout` ms (`0`: try once), or with an `AbortError` when `signal`
 * aborts. Waiting never blocks the event loop nor uses the thread pool, and
 * a release or the holder's death hands the lock over within milliseconds.
 *
 * @example
 * const held = await lock('backup', { timeout: 60_000 })
 * try { await backup() } finally { held.release() }
 */
export async function lock(name: string, options?: WaitOptions): Promise<Lock> {
  const id = checkIdentity(name, options)
  const timeout = checkTimeout(id.options.timeout)
  const signal = checkSignal(id.options.signal)
  if (signal?.aborted) throw abortError(signal)
  const loc = locateIdentity(id)
  if (timeout === 0) {
    const r = acquireNow(loc, id.data)
    if (r instanceof Error) throw r
    return r
  }
  // A failure deep in the wait (a descriptor or a thread it could not get)
  // names the lock file too, as every other system error does.
  let r: Awaited<ReturnType<typeof backend.wait>>
  try {
    r = await backend.wait(loc, (at) => makeRecord(hostName(), loc, id.data, at), timeout, signal)
  } catch (err) {
    fromNative(err, loc.path)
  }
  if (isHeld(r)) {
    const own = registry.get(loc.id)
    throw lockedError(loc, own !== undefined ? own.holder : current(loc, parseRecord(r.record, loc)))
  }
  const recovered = (r.handle as { recovered?: boolean }).recovered === true
  return newLock(local, loc, r.handle, new Date(r.at), id.data, recovered)
}

/**
 * The guard for the first line of `main`. Free: returns the `Lock`, held
 * until the process ends. Held elsewhere: prints who holds it and how to stop
 * it, and exits with `exitCode` (default 1); with `onLocked: 'throw'` throws
 * `LockedError` instead. With `onLocked: 'replace'` it returns a promise: the
 * running instance is stopped as `stop()` does (the verified holder gets
 * SIGTERM, then SIGKILL after `timeout` ms, default 10000) and the lock is
 * taken. With `onLocked: 'forward'` it returns a promise too: held
 * elsewhere, this process's argv, cwd and `message` go to the holder's
 * `onMessage` handler, and once it has replied the process exits with 0; if
 * the holder accepts no messages, does not reply within `timeout` (default
 * 5000) or its handler throws, it prints who holds it and exits with
 * `exitCode`. `onSecondInstance`, in every form, is the handler the lock
 * listens with once it is ours. In a `node:cluster` worker whose primary
 * holds the lock, it returns a `Lock` standing for the primary's hold
 * (`lock.clusterPrimary`) instead.
 *
 * @example
 * singleInstance('my-daemon')
 * const lock = await singleInstance('dev-server', { onLocked: 'replace' })
 * await singleInstance('editor', { onLocked: 'forward', onSecondInstance: ({ argv }) => console.log('open', argv.slice(2)) })
 */
export function singleInstance(name: string, options?: GuardOptions): Lock
export function singleInstance(name: string, options: ReplaceOptions | ForwardOptions): Promise<Lock>
export function singleInstance(name: string, options?: GuardOptions | ReplaceOptions | ForwardOptions): Lock | Promise<Lock> {
  const id = checkIdentity(name, options)
  const onLocked = checkOnLocked(id.options.onLocked, ['exit', 'throw', 'replace', 'forward'])
  const onSecond = id.options.onSecondInstance
  if (onSecond !== undefined && typeof onSecond !== 'function') throw invalidArgType('onSecondInstance', 'a function', onSecond)
  const listening = (lock: Lock): Lock => {
    if (onSecond !== undefined && lock.clusterPrimary === undefined) lock.onMessage(onSecond as MessageHandler)
    return lock
  }
  if (onLocked === 'replace') {
    const timeout = checkTimeout(id.options.timeout) ?? DEFAULT_TIMEOUT
    const loc = locateIdentity(id)
    // A cluster worker must not stop its own primary.
    const primary = heldByPrimary(loc)
    return primary !== undefined ? Promise.resolve(primary) : replaceHolder(loc, id.data, timeout).then(listening)
  }
  const exitCode = checkExitCode(id.options.exitCode)
  const timeout = onLocked === 'forward' ? (checkTimeout(id.options.timeout) ?? DEFAULT_SEND_TIMEOUT) : 0
  const loc = locateIdentity(id)
  const r = acquireNow(loc, id.data)
  if (!(r instanceof Error)) return onLocked === 'forward' ? Promise.resolve(listening(r)) : listening(r)
  const primary = heldByPrimary(loc, r.holder)
  if (primary !== undefined) return onLocked === 'forward' ? Promise.resolve(primary) : primary
  if (onLocked === 'throw') throw r
  const conflict = (): never => {
    writeStderr(conflictMessage(loc, r.holder, id.dir === undefined ? undefined : resolve(id.dir)))
    process.exit(exitCode)
  }
  if (onLocked === 'exit') conflict()
  // Checked before anything is sent: a message that cannot be sent is a bug, not a conflict.
  const sent = loadMessages().send(loc, id.options.message, timeout, undefined)
  return sent.then(
    () => process.exit(0),
    (err: { code?: unknown }) => {
      if (err.code === 'ERR_INVALID_ARG_VALUE') throw err
      return conflict()
    },
  )
}

/** How long `send()` and a forwarding guard wait for the holder's reply, by default. */
const DEFAULT_SEND_TIMEOUT = 5000

/**
 * Sends `data` (any JSON value, at most 64 KiB as JSON), with this
 * process's argv, cwd and pid, to the holder of the lock, and resolves its
 * handler's reply. Rejects with `code` `'ENOTRUNNING'` (the lock is free),
 * `'ENOLISTENER'` (held, but its holder accepts no messages), `'ETIMEDOUT'`
 * (no reply within `timeout` ms, default 5000), `'EREMOTE'` (the handler
 * threw; its message is passed on), or an `AbortError`. A holder that has
 * just taken the lock and is not listening yet is waited for, within
 * `timeout`.
 *
 * @example
 * const port = await send('web', { ask: 'port' })
 */
export async function send(name: string, data?: unknown, options?: SendOptions): Promise<unknown> {
  const id = checkIdentity(name, options)
  const timeout = checkTimeout(id.options.timeout) ?? DEFAULT_SEND_TIMEOUT
  const signal = checkSignal(id.options.signal)
  if (signal?.aborted) throw abortError(signal)
  return loadMessages().send(locateIdentity(id), data, timeout, signal)
}

function writeStderr(text: string): void {
  try {
    process.stderr.write(text)
  } catch {
    // stderr closed: the exit code still tells
  }
}

/**
 * Reports whether the lock is held and by whom, without taking it and
 * without ever making a concurrent `tryLock` fail.
 *
 * @example
 * const { locked, holder } = inspect('web')
 * if (locked) console.log(`web runs as pid ${holder?.pid} on port ${holder?.data?.port}`)
 */
export function inspect(name: string, options?: LockOptions): LockStatus {
  return statusAt(locateIdentity(checkIdentity(name, options)))
}

/**
 * Every lock of this package in the scope (or `dir`), held or not, without
 * side effects on any of them.
 *
 * @example
 * for (const s of list()) console.log(s.name, s.locked ? s.holder?.pid : 'free')
 */
export function list(options?: ListOptions): LockStatus[] {
  const o = checkOptionsObject(options)
  const scope = checkScope(o.scope)
  const dir = checkDir(o.dir)
  const out: LockStatus[] = []
  for (const found of backend.enumerate(scope, dir)) {
    const loc = found.location
    const own = registry.get(loc.id)
    if (own !== undefined) {
      out.push(statusOf(locationOf(own), true, own.holder))
      continue
    }
    let p
    try {
      p = backend.probe(loc)
    } catch {
      continue // vanished or unreadable while listing: not ours to report
    }
    if (p === null) continue
    const holder = parseRecord(p.record, loc)
    // The key is only in the record: believe it if it hashes to the name.
    if (found.keyHash !== undefined && holder?.key !== undefined && keyHash(holder.key) === found.keyHash) {
      loc.key = holder.key
    }
    out.push(statusOf(loc, p.held, p.held ? current(loc, holder) : undefined))
  }
  return out
}
