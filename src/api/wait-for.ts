import { watch } from 'node:fs'
import type { FSWatcher } from 'node:fs'
import type { Location } from '../core/backend.js'
import { abortError } from '../core/errors.js'
import { locateIdentity } from '../core/locate.js'
import { describeLock } from '../core/lock.js'
import { backend } from '../backends/index.js'
import { statusAt } from './status.js'
import type { LockStatus, WaitForOptions } from './types.js'
import { checkBoolean, checkIdentity, checkSignal, checkTimeout } from './validate.js'

export const DEFAULT_WAIT_FOR_TIMEOUT = 10_000

// How waitFor notices. It only ever looks (the probe behind inspect(), which
// takes nothing), so it cannot delay or refuse anyone's acquisition. Unix:
// the holder rewrites the lock file in place when it acquires, update()s and
// calls ready(), so a watch on the file wakes it at once. The watch cannot
// see everything (a holder whose file is read-only to it writes no record;
// network file systems; the file not made yet; Windows records), so it also
// looks on a timer: after 10 ms, then 15, 22, … up to every 100 ms.
const FIRST_POLL = 10
const LAST_POLL = 100
// setTimeout fires at once for delays it cannot represent.
const MAX_TIMER = 2 ** 31 - 1

function reached(s: LockStatus, ready: boolean): boolean {
  return s.locked && (!ready || s.holder?.ready === true)
}

/**
 * Waits until the lock is held (with `ready: true`: held by a holder that
 * has called `Lock.ready()`) and resolves with its status, as `inspect()`
 * reports it. Rejects with an `Error` of `code: 'ETIMEDOUT'` after `timeout`
 * ms (default 10000; `0` looks once), or with an `AbortError` when `signal`
 * aborts. It takes nothing and never makes anyone's `tryLock` fail; the
 * pending promise keeps the process alive until it settles.
 *
 * @example
 * import { spawn } from 'node:child_process'
 * spawn('node', ['server.mjs'], { detached: true, stdio: 'ignore' }).unref()
 * const { holder } = await waitFor('web', { ready: true, timeout: 30_000 })
 * console.log(`web is up on port ${holder?.data?.port}`)
 */
export async function waitFor(name: string, options?: WaitForOptions): Promise<LockStatus> {
  const id = checkIdentity(name, options)
  const ready = checkBoolean(id.options.ready, 'ready') ?? false
  const timeout = checkTimeout(id.options.timeout) ?? DEFAULT_WAIT_FOR_TIMEOUT
  const signal = checkSignal(id.options.signal)
  if (signal?.aborted) throw abortError(signal)
  const loc = locateIdentity(id)
  const first = statusAt(loc)
  if (reached(first, ready)) return first
  if (timeout === 0) throw timedOut(loc, ready, timeout, first)
  return new Promise<LockStatus>((resolve, reject) => {
    const deadline = Date.now() + timeout
    const file = backend.recordFile?.(loc)
    let last = first
    let settled = false
    let delay = FIRST_POLL
    let watcher: FSWatcher | undefined
    let poll: NodeJS.Timeout | undefined
    let limit: NodeJS.Timeout | undefined

    const finish = (): void => {
      settled = true
      clearTimeout(poll)
      clearTimeout(limit)
      unwatch()
      signal?.removeEventListener('abort', onAbort)
    }
    const look = (): void => {
      if (settled) return
      try {
        last = statusAt(loc)
      } catch (err) {
        finish()
        reject(err)
        return
      }
      if (reached(last, ready)) {
        finish()
        resolve(last)
      }
    }
    const unwatch = (): void => {
      watcher?.close()
      watcher = undefined
    }
    const watchFile = (): void => {
      if (file === undefined || watcher !== undefined) return
      try {
        // Not persistent: the poll timer is what keeps the process alive.
        watcher = watch(file, { persistent: false }, (event) => {
          // The file was renamed or deleted: watch whatever is at the path
          // on the next tick.
          if (event === 'rename') unwatch()
          look()
        })
        watcher.on('error', unwatch)
      } catch {
        // Not made yet, or no watch to be had (inotify limits): the timer
        // looks, and tries to watch again on each tick.
      }
    }
    const tick = (): void => {
      look()
      if (settled) return
      watchFile()
      delay = Math.min(LAST_POLL, Math.ceil(delay * 1.5))
      poll = setTimeout(tick, delay)
    }
    const expire = (): void => {
      const left = deadline - Date.now()
      if (left > 0) {
        limit = setTimeout(expire, Math.min(left, MAX_TIMER))
        return
      }
      look()
      if (settled) return
      finish()
      reject(timedOut(loc, ready, timeout, last))
    }
    const onAbort = (): void => {
      finish()
      reject(abortError(signal!))
    }

    signal?.addEventListener('abort', onAbort, { once: true })
    watchFile()
    poll = setTimeout(tick, delay)
    if (timeout !== Infinity) limit = setTimeout(expire, Math.min(timeout, MAX_TIMER))
  })
}

function timedOut(loc: Location, ready: boolean, timeout: number, last: LockStatus): Error {
  const what = describeLock(loc)
  const by = last.holder === undefined ? '' : ` by pid ${last.holder.pid}`
  const err = new Error(ready && last.locked ? `${what} is held${by} but was not ready within ${timeout} ms` : `${what} was not held within ${timeout} ms`) as Error & {
    code: string
  }
  err.code = 'ETIMEDOUT'
  return err
}
