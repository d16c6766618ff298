import { lstatSync } from 'node:fs'
import type { Location, Backend } from '../core/backend.js'
import type { PosixAddon, Win32Addon } from '../backends/addon.js'
import { codedError, requestFrames, sendRequest } from './client.js'
import type { Transport } from './client.js'
import { HandlerQueue } from './queue.js'
import type { MessageHandler } from './types.js'
import { connectUnix, listenUnix } from './unix.js'
import { connectPipe, listenPipe } from './windows.js'

// Messages to the running instance: loaded (dist/messages/index.js) only
// when a program uses them, so the guard's start-up never pays for them.
// Like dist/win32.js it bundles nothing of src/ besides this folder: the
// modules it needs are handed over, one instance of each per process.

export type { InstanceMessage, MessageHandler } from './types.js'

export interface MessageDeps {
  native: PosixAddon | Win32Addon
  backend: Backend
  /** Linux: whether `pid` holds the flock on `path`, as the kernel shows it. */
  heldBy: ((loc: Location, pid: number) => boolean) | undefined
  /** Is the lock held by this process (its registry)? */
  ownsLock: (loc: Location) => boolean
  abortError: (signal: AbortSignal) => Error
  invalidArgValue: (name: string, reason: string) => Error
  describeLock: (loc: Location) => string
}

export interface Listener {
  handler: MessageHandler
  close(): void
}

export interface Messages {
  listen(loc: Location, handler: MessageHandler): Listener
  /** Checks `data` (throws ERR_INVALID_ARG_VALUE) before anything is sent. */
  send(loc: Location, data: unknown, timeout: number, signal: AbortSignal | undefined): Promise<unknown>
}

export function createMessages(deps: MessageDeps): Messages {
  const { native } = deps
  const held = (loc: Location): boolean => {
    if (deps.ownsLock(loc)) return true
    const p = deps.backend.probe(loc)
    return p !== null && p.held
  }

  /**
   * Unix: whether the process listening at the endpoint holds the lock: on
   * Linux the kernel shows the flock's holders; elsewhere the listening
   * process must at least be the lock file's owner.
   */
  const isHolder = (loc: Location, pid: number, uid: number): boolean => {
    if (deps.heldBy !== undefined) return deps.heldBy(loc, pid)
    try {
      return lstatSync(loc.path).uid === uid
    } catch {
      return false
    }
  }

  return {
    listen(loc, handler) {
      const queue = new HandlerQueue(handler)
      const endpoint = native.platform === 'win32' ? listenPipe(native, loc, queue) : listenUnix(native, loc as unknown as Parameters<typeof listenUnix>[1], queue)
      return {
        get handler() {
          return queue.handler
        },
        set handler(h: MessageHandler) {
          queue.handler = h
        },
        close: () => endpoint.close(),
      }
    },
    async send(loc, data, timeout, signal) {
      const request = requestFrames(data, deps.invalidArgValue)
      const t: Transport =
        native.platform === 'win32'
          ? { held: () => held(loc), connect: (left) => connectPipe(native, loc, (pid) => deps.backend.holders(loc).includes(pid), left) }
          : {
              held: () => held(loc),
              connect: (left) => connectUnix(native, loc as unknown as Parameters<typeof connectUnix>[1], (pid, uid) => isHolder(loc, pid, uid), left),
            }
      return sendRequest(t, deps.describeLock(loc), request, timeout, signal, deps.abortError)
    },
  }
}

export { codedError }
