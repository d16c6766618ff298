import { spawn, type ChildProcess } from 'node:child_process'
import { constants } from 'node:os'
import { parseArgs } from 'node:util'
import type { PostgresLock, PostgresLocks } from './index.js'
import { RUN_OPTIONS } from '../../cli/run-options.js'
import { clusterStatusText, clusterStopReport } from '../../core/format.js'

// `instance-lock status | stop | run --postgres URL`: the verbs on the
// PostgreSQL backend. Bundled into the CLI; the backend itself (and pg) is
// loaded only when one of them runs.

type Verb = 'status' | 'stop' | 'run'

export interface CliIo {
  out(text: string): void
  err(text: string): void
  /** The CLI's bad-usage error (exit 2, with the verb's synopsis). */
  usage(verb: Verb, message: string): Error
  /** Loads the backend: dist/postgres.js. */
  load(): typeof import('./index.js')
}

const EXIT_HELD = 1
const EXIT_FREE = 3
const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']

/** The URL from `--postgres URL` or INSTANCE_LOCK_POSTGRES, when either is given: then the verb is ours. */
export function postgresUrl(args: string[]): string | undefined {
  const own = args.indexOf('--') < 0 ? args : args.slice(0, args.indexOf('--'))
  for (let i = 0; i < own.length; i++) {
    if (own[i] === '--postgres') return own[i + 1] ?? ''
    if (own[i]!.startsWith('--postgres=')) return own[i]!.slice('--postgres='.length)
  }
  const env = process.env.INSTANCE_LOCK_POSTGRES
  return env === undefined || env === '' ? undefined : env
}

const COMMON = { postgres: { type: 'string' }, key: { type: 'string' }, help: { type: 'boolean', short: 'h' } } as const

function parse(
  io: CliIo,
  verb: Verb,
  args: string[],
  options: Record<string, { type: 'string' | 'boolean' }>,
): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    const r = parseArgs({ args, options: { ...COMMON, ...options }, allowPositionals: true, strict: true })
    return { values: r.values, positionals: r.positionals }
  } catch (e) {
    let message = (e as Error).message.replace(/\s*\n\s*/g, ' ')
    if ((e as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') message = `${message.split('. ')[0]!} (with --postgres)`
    throw io.usage(
      verb,
      message.replace(/^\w/, (ch) => ch.toLowerCase()),
    )
  }
}

/** A library check's bad input, as bad usage. */
function checked<T>(io: CliIo, verb: Verb, f: () => T): T {
  try {
    return f()
  } catch (e) {
    throw asUsage(io, verb, e)
  }
}

/** The same for a call that rejects. */
async function checkedAsync<T>(io: CliIo, verb: Verb, f: () => Promise<T>): Promise<T> {
  try {
    return await f()
  } catch (e) {
    throw asUsage(io, verb, e)
  }
}

function asUsage(io: CliIo, verb: Verb, e: unknown): unknown {
  const code = (e as { code?: string }).code
  if (code?.startsWith('ERR_INVALID_ARG') === true || code === 'ERR_OUT_OF_RANGE')
    return io.usage(
      verb,
      (e as Error).message.replace(/^\w/, (ch) => ch.toLowerCase()),
    )
  return e
}

function ms(io: CliIo, verb: Verb, option: string, value: string): number {
  if (!/^\d+$/.test(value)) throw io.usage(verb, `${option} expects a number of milliseconds, got ${JSON.stringify(value)}`)
  return Number(value)
}

/** Runs a verb on the PostgreSQL backend and resolves its exit status. */
export async function postgresCli(verb: Verb, args: string[], url: string, io: CliIo): Promise<number> {
  if (url === '') throw io.usage(verb, '--postgres expects a URL such as postgres://user@host:5432/database')
  const sep = args.indexOf('--')
  switch (verb) {
    case 'status': {
      const { values, positionals } = parse(io, verb, args, { json: { type: 'boolean' }, all: { type: 'boolean' } })
      if (positionals.length > 1) throw io.usage(verb, `expected at most one NAME, got ${positionals.map((p) => JSON.stringify(p)).join(' ')}`)
      const locks = checked(io, verb, () => io.load().postgres(url))
      try {
        if (positionals[0] === undefined) {
          if (values.key !== undefined) throw io.usage(verb, '--key needs a NAME: instance-lock status NAME --key K')
          const all = await locks.list()
          const shown = values.all === true ? all : all.filter((s) => s.locked)
          if (values.json === true) io.out(`${JSON.stringify(shown, null, 2)}\n`)
          else if (shown.length === 0) io.out(all.length === 0 ? 'No locks in this database\n' : `No locks held in this database (${all.length} free; --all lists them)\n`)
          else io.out(shown.map(clusterStatusText).join(''))
          return 0
        }
        const s = await checkedAsync(io, verb, () => locks.inspect(positionals[0]!, values.key === undefined ? {} : { key: values.key as string }))
        io.out(values.json === true ? `${JSON.stringify(s, null, 2)}\n` : clusterStatusText(s))
        return s.locked ? 0 : EXIT_FREE
      } finally {
        await locks.close()
      }
    }
    case 'stop': {
      const { values, positionals } = parse(io, verb, args, { timeout: { type: 'string' }, force: { type: 'boolean' } })
      if (positionals.length !== 1)
        throw io.usage(verb, positionals.length === 0 ? 'missing NAME: which lock to stop' : `expected one NAME, got ${positionals.map((p) => JSON.stringify(p)).join(' ')}`)
      const timeout = values.timeout === undefined ? 10_000 : ms(io, verb, '--timeout', values.timeout as string)
      const locks = checked(io, verb, () => io.load().postgres(url))
      const id = { name: positionals[0]!, ...(values.key === undefined ? {} : { key: values.key as string }) }
      try {
        const r = await checkedAsync(io, verb, () => locks.stop(id.name, { ...id, timeout, force: values.force === true }))
        const report = clusterStopReport(id, r, timeout)
        if (report.out !== undefined) io.out(report.out)
        if (report.err !== undefined) io.err(report.err)
        return r.stopped ? 0 : EXIT_HELD
      } finally {
        await locks.close()
      }
    }
    case 'run': {
      const command = sep < 0 ? [] : args.slice(sep + 1)
      const own = (sep < 0 ? args : args.slice(0, sep)).map((a) => (a === '--wait' ? '--wait=' : a))
      const { values, positionals } = parse(io, verb, own, RUN_OPTIONS)
      if (positionals.length !== 1)
        throw io.usage(verb, positionals.length === 0 ? 'missing NAME: which lock to hold while COMMAND runs' : `unexpected argument ${JSON.stringify(positionals[1])} before '--'`)
      if (command.length === 0) throw io.usage(verb, `missing COMMAND after '--'`)
      if (values.wait !== undefined && values.replace === true) throw io.usage(verb, '--wait and --replace exclude each other: wait for the holder, or stop it')
      const wait = values.wait === undefined || values.wait === '' ? undefined : ms(io, verb, '--wait', values.wait as string)
      const timeout = values.timeout === undefined ? 10_000 : ms(io, verb, '--timeout', values.timeout as string)
      let conflictExit = 1
      if (values['conflict-exit-code'] !== undefined) {
        const v = values['conflict-exit-code'] as string
        if (!/^\d{1,3}$/.test(v) || Number(v) > 255) throw io.usage(verb, `--conflict-exit-code expects a number from 0 to 255, got ${JSON.stringify(v)}`)
        conflictExit = Number(v)
      }
      let data: Record<string, unknown> = { command: command.join(' ').slice(0, 1024) }
      if (values.data !== undefined) {
        let extra: unknown
        try {
          extra = JSON.parse(values.data as string)
        } catch {
          extra = undefined
        }
        if (extra === null || typeof extra !== 'object' || Array.isArray(extra))
          throw io.usage(verb, `--data expects a JSON object such as '{"port":5858}', got ${JSON.stringify(values.data)}`)
        data = { ...data, ...(extra as Record<string, unknown>) }
      }
      const name = positionals[0]!
      const opts = { ...(values.key === undefined ? {} : { key: values.key as string }), data }
      const mod = io.load()
      const locks = checked(io, verb, () => mod.postgres(url))
      let held: PostgresLock
      try {
        held = await checkedAsync(io, verb, () =>
          values.replace === true
            ? locks.singleInstance(name, { ...opts, onLocked: 'replace', timeout })
            : values.wait !== undefined
              ? locks.lock(name, { ...opts, ...(wait === undefined ? {} : { timeout: wait }) })
              : locks.tryLock(name, opts),
        )
      } catch (e) {
        await locks.close()
        if (!(e instanceof mod.LockedError)) throw e
        if (values.quiet !== true)
          io.err(`instance-lock: ${e.message}\n${values.wait === undefined ? '  or run with --wait to wait for it, or with --replace to stop it first\n' : ''}`)
        return conflictExit
      }
      return runHolding(io, locks, held, command, values.ready === true)
    }
  }
}

/** COMMAND runs while this process holds the lock's session; a lost lock ends it. */
function runHolding(io: CliIo, locks: PostgresLocks, held: PostgresLock, command: string[], ready: boolean): Promise<number> {
  return new Promise((resolve) => {
    let child: ChildProcess
    let lost = false
    let settled = false
    const finish = async (code: number): Promise<void> => {
      if (settled) return
      settled = true
      for (const s of FORWARDED) process.off(s, forward)
      await held[Symbol.asyncDispose]()
      await locks.close()
      resolve(lost ? 1 : code)
    }
    const forward = (signal: NodeJS.Signals): void => {
      child.kill(signal)
    }
    try {
      child = spawn(command[0]!, command.slice(1), { stdio: 'inherit' })
    } catch (e) {
      io.err(`instance-lock: cannot run ${JSON.stringify(command[0])}: ${(e as Error).message}\n`)
      void finish(126)
      return
    }
    for (const s of FORWARDED) process.on(s, forward)
    held.signal.addEventListener('abort', () => {
      lost = true
      io.err(`instance-lock: ${(held.signal.reason as Error).message}; stopping COMMAND\n`)
      child.kill('SIGTERM')
    })
    if (ready) child.once('spawn', () => void held.ready())
    child.once('error', (e: NodeJS.ErrnoException) => {
      io.err(`instance-lock: cannot run ${JSON.stringify(command[0])}: ${e.message}\n`)
      void finish(e.code === 'ENOENT' ? 127 : 126)
    })
    child.once('exit', (code, signal) => {
      void finish(code ?? 128 + ((constants.signals as Record<string, number>)[signal!] ?? 0))
    })
  })
}
