import type { MessageHandler } from '../messages/types.js'

/** `'user'`: private to the OS user. `'machine'`: every user of the machine contends. */
export type Scope = 'user' | 'machine'

/** What identifies a lock besides its name, and what it records. */
export interface LockOptions {
  /**
   * A resource the lock is for, typically a database file: one holder per
   * `(name, key)`. A path to an existing file or directory, or a key written
   * as a path (with a `/`, no URL scheme) to one not made yet, is
   * canonicalised, so two spellings of the same file are the same lock
   * before and after it exists. Other keys are taken as written.
   */
  key?: string
  /** Default `'user'`. The same name in the two scopes is two locks. */
  scope?: Scope
  /** Unix: keep the lock file in this directory instead of the scope's own. */
  dir?: string
  /** JSON metadata shown by `inspect()`, `list()` and `instance-lock status`, e.g. `{ port: 3000 }`. */
  data?: Record<string, unknown>
}

/** Options of {@link lock}: wait at most `timeout` ms, or until `signal` aborts. */
export interface WaitOptions extends LockOptions {
  /** Milliseconds to wait; default: no limit; `0` behaves like `tryLock`. */
  timeout?: number
  signal?: AbortSignal
}

/**
 * Who holds a lock, as recorded by the holder when it acquired (or last
 * updated) it; the pid is the process holding it now.
 */
export interface Holder {
  /** The process that holds the lock now, as the kernel shows it (Linux); elsewhere the record's. */
  pid: number
  /**
   * The pid in the record, when it is not `pid`: the process that took the
   * lock has exited, and one it passed the lock's descriptor to holds it
   * (`instance-lock run`'s COMMAND, a daemon COMMAND started).
   */
  recordedPid?: number
  hostname: string
  /** ISO 8601, when the lock was acquired. */
  startedAt: string
  name: string
  key?: string
  scope: Scope
  data?: Record<string, unknown>
  /**
   * True once the holder called `Lock.ready()` (or `instance-lock run
   * --ready` started its COMMAND); absent while it is starting.
   */
  ready?: boolean
}

/** The state of one lock, as `inspect()` and `list()` report it. */
export interface LockStatus {
  name: string
  key?: string
  scope: Scope
  locked: boolean
  /** Present when locked and the holder's record is readable. */
  holder?: Holder
  /** The lock file (Unix) or the mutex name (Windows). */
  path: string
}

/** Options of {@link waitFor}. */
export interface WaitForOptions extends LockOptions {
  /** Wait until the holder has called `Lock.ready()`, not only until the lock is held. */
  ready?: boolean
  /** Milliseconds to wait; default 10000. `0`: look once. `Infinity`: no limit. */
  timeout?: number
  signal?: AbortSignal
}

/** Options of {@link list}. */
export interface ListOptions {
  scope?: Scope
  dir?: string
}

/** Options of {@link singleInstance} when it exits or throws on conflict. */
export interface GuardOptions extends LockOptions {
  /** `'exit'` (default): print who holds it and exit; `'throw'`: throw `LockedError`. */
  onLocked?: 'exit' | 'throw'
  /** Exit code for `onLocked: 'exit'`; default 1. */
  exitCode?: number
  /** Once the lock is ours: accept messages from later instances with this handler (`Lock.onMessage`). */
  onSecondInstance?: MessageHandler
}

/** Options of {@link singleInstance} when it replaces the running instance. */
export interface ReplaceOptions extends LockOptions {
  onLocked: 'replace'
  /** Milliseconds to wait for the old instance after SIGTERM before SIGKILL; default 10000. */
  timeout?: number
  /** Once the lock is ours: accept messages from later instances with this handler (`Lock.onMessage`). */
  onSecondInstance?: MessageHandler
}

/**
 * Options of {@link singleInstance} when a second instance hands over to the
 * running one (Electron's single-instance pattern).
 */
export interface ForwardOptions extends LockOptions {
  onLocked: 'forward'
  /** Sent as `data`, with this process's argv, cwd and pid. */
  message?: unknown
  /** Milliseconds to wait for the holder's reply; default 5000. */
  timeout?: number
  /** Exit code when forwarding fails (no listener, no reply in time, the handler threw); default 1. */
  exitCode?: number
  /** Once the lock is ours: accept messages from later instances with this handler (`Lock.onMessage`). */
  onSecondInstance?: MessageHandler
}

/** Options of {@link send}. */
export interface SendOptions extends Omit<LockOptions, 'data'> {
  /** Milliseconds for the whole exchange, including waiting for the holder's endpoint; default 5000. */
  timeout?: number
  signal?: AbortSignal
}

/** Options of {@link stop}. */
export interface StopOptions extends LockOptions {
  /** Default `'SIGTERM'`. On Windows the process is terminated. */
  signal?: NodeJS.Signals
  /** Milliseconds to wait for the lock to be free; default 10000. */
  timeout?: number
  /** After `timeout`, kill the holder (`SIGKILL`) and wait again. */
  force?: boolean
}

/** What {@link stop} did. */
export interface StopResult {
  /** The lock is free now. */
  stopped: boolean
  /** The verified holder that was signalled, if any. */
  pid?: number
  /** It had to be killed. */
  forced: boolean
  /**
   * The holder's record as stop last read it, when it was held and the record
   * readable: who took the lock, with what data. Its `pid` is the record's
   * word, never verified here (the process signalled is `pid` above); with
   * `successor`, it is the successor's record, if it had written one.
   */
  holder?: Holder
  /**
   * Another instance took the lock the moment the one stopped let go (or as
   * it was first looked at), and was left alone: its pid. `stopped` is true,
   * as the instance found is gone, but the lock is held again, by that
   * process.
   */
  successor?: number
  /**
   * The lock is held but no process could be verified as its holder, so
   * nothing was signalled (`stopped` is false), and why:
   * `'unsupported'`, this system cannot tell which process holds a lock
   * (flock on macOS and the BSDs), so no holder is ever signalled here;
   * `'unseen'`, none this process may see holds it (the holder runs as
   * another user or in another pid namespace, such as a container), or each
   * one found let go before its signal while the lock stayed held.
   */
  unverified?: 'unsupported' | 'unseen'
}
