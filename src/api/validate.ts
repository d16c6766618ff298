import type { LockOptions, Scope } from './types.js'
import { invalidArgType, invalidArgValue, outOfRange } from '../core/errors.js'

// Every check here runs before anything touches a file or a kernel object.

const NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$/
const MAX_KEY = 4096
const MAX_DATA = 16 * 1024

export function checkName(name: unknown): string {
  if (typeof name !== 'string') throw invalidArgType('name', 'a string', name)
  if (!NAME.test(name)) {
    throw invalidArgValue('name', `expected 1 to 64 characters of A-Z a-z 0-9 . _ -, not starting with '.', got ${JSON.stringify(name.slice(0, 80))}`)
  }
  return name
}

export function checkOptionsObject(options: unknown, what = 'options'): Record<string, unknown> {
  if (options === undefined) return {}
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw invalidArgType(what, 'an object', options)
  }
  return options as Record<string, unknown>
}

export function checkScope(scope: unknown): Scope {
  if (scope === undefined) return 'user'
  if (typeof scope !== 'string') throw invalidArgType('scope', "'user' or 'machine'", scope)
  if (scope !== 'user' && scope !== 'machine') throw invalidArgValue('scope', `expected 'user' or 'machine', got ${JSON.stringify(scope)}`)
  return scope
}

export function checkKey(key: unknown): string | undefined {
  if (key === undefined) return undefined
  if (typeof key !== 'string') throw invalidArgType('key', 'a string', key)
  if (key.length === 0 || key.length > MAX_KEY) throw invalidArgValue('key', `expected 1 to ${MAX_KEY} characters, got ${key.length}`)
  if (key.includes('\0')) throw invalidArgValue('key', 'must not contain NUL')
  return key
}

export function checkDir(dir: unknown): string | undefined {
  if (dir === undefined) return undefined
  if (typeof dir !== 'string') throw invalidArgType('dir', 'a string', dir)
  if (dir.length === 0) throw invalidArgValue('dir', 'must not be empty')
  if (dir.includes('\0')) throw invalidArgValue('dir', 'must not contain NUL')
  return dir
}

/** Validates `data` and returns its JSON text. */
export function checkData(data: unknown, what = 'data'): string | undefined {
  if (data === undefined) return undefined
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw invalidArgType(what, 'a plain object', data)
  let json: string
  try {
    json = JSON.stringify(data)
  } catch (err) {
    throw invalidArgValue(what, `must be JSON-serialisable (${(err as Error).message})`)
  }
  if (json.length > MAX_DATA) throw invalidArgValue(what, `must serialise to at most ${MAX_DATA} characters of JSON, got ${json.length}`)
  return json
}

export function checkTimeout(timeout: unknown, name = 'timeout'): number | undefined {
  if (timeout === undefined) return undefined
  if (typeof timeout !== 'number') throw invalidArgType(name, 'a non-negative number', timeout)
  if (!(timeout >= 0)) throw outOfRange(name, 'a non-negative number', timeout)
  return timeout
}

export function checkBoolean(value: unknown, name: string): boolean | undefined {
  if (value === undefined || typeof value === 'boolean') return value
  throw invalidArgType(name, 'a boolean', value)
}

export function checkSignal(signal: unknown): AbortSignal | undefined {
  if (signal === undefined) return undefined
  if (signal === null || typeof signal !== 'object' || typeof (signal as AbortSignal).aborted !== 'boolean' || typeof (signal as AbortSignal).addEventListener !== 'function') {
    throw invalidArgType('signal', 'an AbortSignal', signal)
  }
  return signal as AbortSignal
}

export interface Identity {
  name: string
  key: string | undefined
  scope: Scope
  dir: string | undefined
  data: string | undefined
}

/** The common part of every function's arguments. */
export function checkIdentity(name: unknown, options: unknown): Identity & { options: Record<string, unknown> } {
  const n = checkName(name)
  const o = checkOptionsObject(options)
  return {
    name: n,
    key: checkKey(o.key),
    scope: checkScope(o.scope),
    dir: checkDir(o.dir),
    data: checkData(o.data),
    options: o,
  }
}

export type { LockOptions }

/**
 * A guard's `onLocked`, one of `allowed` (the PostgreSQL guard has no
 * `'forward'`); `'exit'` when absent.
 */
export function checkOnLocked<T extends string>(value: unknown, allowed: readonly T[]): T {
  if (value === undefined) return 'exit' as T
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T
  const choices = allowed.map((a) => `'${a}'`)
  const listed = `${choices.slice(0, -1).join(', ')} or ${choices.at(-1)}`
  if (typeof value !== 'string') throw invalidArgType('onLocked', listed, value)
  throw invalidArgValue('onLocked', `expected ${listed}, got ${JSON.stringify(value)}`)
}

/** A guard's `exitCode`: an integer from 0 to 255, as a process's exit status is; 1 when absent. */
export function checkExitCode(value: unknown): number {
  if (value === undefined) return 1
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 255) throw invalidArgType('exitCode', 'an integer from 0 to 255', value)
  return value
}
