import { spawn } from 'node:child_process'
import type { ChildProcess, StdioOptions } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { constants } from 'node:os'
import { join, resolve as resolvePath } from 'node:path'
import { parseArgs } from 'node:util'
import { postgresCli, postgresUrl } from '../backends/postgres/cli.js'
import { RUN_OPTIONS } from './run-options.js'
import { LockedError } from '../core/errors.js'
import { conflictMessage, shellQuote, statusTable, statusText, stopReport } from '../core/format.js'
import { inspect, list, lock, send, singleInstance, stop, tryLock, waitFor } from '../api/index.js'
import { describeLock, passOn } from '../core/lock.js'
import type { Lock } from '../core/lock.js'
import { identify } from '../api/status.js'
import { DEFAULT_TIMEOUT } from '../api/stop.js'
import type { LockOptions, LockStatus, Scope } from '../api/types.js'
import { checkData, checkDir, checkKey, checkName, checkScope } from '../api/validate.js'
import { DEFAULT_WAIT_FOR_TIMEOUT } from '../api/wait-for.js'

// `instance-lock status | stop | run | wait`, as docs/cli.md describes. Exit
// statuses follow the conventions of flock(1), timeout(1) and env(1): 2 for
// bad usage, 125 when instance-lock itself fails, 126 and 127 when COMMAND
// cannot be run or found.

const EXIT_HELD = 1
const EXIT_TIMEOUT = 1
const EXIT_NO_REPLY = 1
const EXIT_USAGE = 2
const EXIT_FREE = 3
const EXIT_FAILED = 125
const EXIT_CANNOT_RUN = 126
const EXIT_NOT_FOUND = 127

type Verb = 'status' | 'stop' | 'run' | 'wait' | 'send'

const SYNOPSIS: Record<Verb, string> = {
  status: 'instance-lock status [NAME] [--scope user|machine] [--key K] [--dir D] [--all] [--json]',
  stop: 'instance-lock stop NAME [--scope S] [--key K] [--dir D] [--timeout MS] [--signal SIG] [--force]',
  run: 'instance-lock run NAME [--scope S] [--key K] [--dir D] [--wait[=MS] | --replace [--timeout MS]] [--conflict-exit-code N] [--no-inherit] [--data JSON] [--ready] [--quiet] -- COMMAND [ARGS...]',
  wait: 'instance-lock wait NAME [--ready] [--timeout MS] [--scope S] [--key K] [--dir D] [--json]',
  send: 'instance-lock send NAME [--json JSON] [--timeout MS] [--scope S] [--key K] [--dir D]',
}

const IDENTITY_HELP = `  --scope user|machine    this user's locks (default) or the whole machine's
  --key K                 the resource the lock is for, e.g. a database file
  --dir D                 the lock directory, if the program chose one`

// status, stop and run only; the PostgreSQL form takes --key but no --scope or --dir.
const POSTGRES_HELP = `  --postgres URL          a lock of this PostgreSQL database (also from the
                          environment variable INSTANCE_LOCK_POSTGRES)`

const HELP: Record<Verb | 'main', string> = {
  main: `instance-lock: single-instance locks held by the kernel (flock, named mutexes)

Usage:
  ${SYNOPSIS.status}
  ${SYNOPSIS.stop}
  ${SYNOPSIS.run}
  ${SYNOPSIS.wait}
  ${SYNOPSIS.send}

Commands:
  status   show who holds a lock, or list the held locks
  stop     stop the process that holds a lock, and wait until it is free
  run      run a command while holding a lock (like flock -n / flock -w)
  wait     wait until a lock is held, or its holder is ready
  send     send a message to the holder of a lock and print its reply

Run 'instance-lock COMMAND --help' for the options of one command.
`,
  status: `Usage: ${SYNOPSIS.status}

Without NAME, lists the held locks of the scope, or of --dir (both scopes
there unless --scope is given), by name: name, key, state, ready or starting,
pid, start time, age and data such as the port. Lock files are never deleted,
so every name ever used has one; --all lists the free ones too.
With NAME, tells whether that lock is held and by whom; if not, but a lock of
that name is held in the other scope or with another key, says how to reach it.

Options:
${IDENTITY_HELP}
${POSTGRES_HELP}
  --all                   without NAME: list free locks too
  --json                  print a LockStatus (with NAME) or a LockStatus[] as JSON
  -h, --help              show this help

Exit status: 0 held (or the list was printed), 3 not held, 2 bad usage,
125 the locks could not be read.
`,
  stop: `Usage: ${SYNOPSIS.stop}

Signals the process that holds the lock NAME right now, as the kernel shows
it (a pid read from a file is never enough), and waits until the lock is
free. A holder that cannot be verified is not signalled. If the lock is not
held but one of that name is, in the other scope or with another key, it
says so on stderr with the options that reach it.

Options:
${IDENTITY_HELP}
${POSTGRES_HELP}
  --timeout MS            how long to wait for the lock to be free (default ${DEFAULT_TIMEOUT})
  --signal SIG            the signal to send: TERM (default), INT, HUP, ...
  --force                 after --timeout, kill the holder (SIGKILL) and wait again
  -h, --help              show this help

Exit status: 0 the lock is free now (or was not held), 1 it is still held,
2 bad usage, 125 the lock could not be read.
`,
  run: `Usage: ${SYNOPSIS.run}

Runs COMMAND while holding the lock NAME and exits with COMMAND's exit status.
If the lock is held, prints who holds it and exits without running COMMAND.
On Unix COMMAND inherits the lock, as with flock(1): it stays held until
COMMAND (and any process COMMAND passes it to) exits, even if instance-lock
itself is killed. With --no-inherit (flock -o) instance-lock alone holds it:
it is free once COMMAND exits, even if COMMAND left a daemon running, and
free at once if instance-lock itself is killed (COMMAND then runs on
unlocked). SIGINT, SIGTERM and SIGHUP are passed on to COMMAND.

Options:
${IDENTITY_HELP}
${POSTGRES_HELP}
  --wait[=MS]             if the lock is held, wait for it (at most MS ms)
  --replace               if the lock is held, stop its holder first (as stop --force)
  --timeout MS            with --replace: how long the holder gets after SIGTERM
                          before it is killed (default ${DEFAULT_TIMEOUT})
  --conflict-exit-code N  exit status when the lock is held (default 1)
  --quiet                 print nothing when the lock is held (for cron jobs
                          that skip a run with --conflict-exit-code 0)
  --no-inherit            COMMAND does not get the lock's descriptor (flock -o)
  --data JSON             record a JSON object for status, e.g. '{"port":5858}'
  --ready                 mark the holder ready as soon as COMMAND has started
  -h, --help              show this help

Exit status: COMMAND's, or 128+N if COMMAND was killed by signal N; the
conflict exit code if the lock is held; 2 bad usage; 125 the lock could not
be taken; 126 COMMAND could not be run; 127 COMMAND was not found.
`,
  wait: `Usage: ${SYNOPSIS.wait}

Waits until the lock NAME is held, or with --ready until its holder has
called lock.ready() (run --ready: has started COMMAND), then prints the
holder as status does. Takes nothing: never delays or blocks the holder.

Options:
${IDENTITY_HELP}
  --ready                 wait until the holder is ready, not only running
  --timeout MS            how long to wait (default ${DEFAULT_WAIT_FOR_TIMEOUT})
  --json                  print the LockStatus as JSON
  -h, --help              show this help

Exit status: 0 held (and ready), 1 not within --timeout, 2 bad usage,
125 the lock could not be read.
`,
  send: `Usage: ${SYNOPSIS.send}

Sends a message to the process holding the lock NAME, which receives it in
its lock.onMessage() handler (with this command's argv, working directory
and pid), and prints the handler's reply as JSON. Waits for a holder that
has just started and is not listening yet, within --timeout.

Options:
${IDENTITY_HELP}
  --json JSON             the message's data, a JSON value, e.g. '{"reload":true}'
  --timeout MS            how long to wait for the reply (default 5000)
  -h, --help              show this help

Exit status: 0 the reply was printed, 3 the lock is not held, 1 the holder
accepts no messages, did not reply in time, or its handler threw (the
message is on stderr), 2 bad usage, 125 the lock could not be read.
`,
}

class UsageError extends Error {
  constructor(
    readonly verb: Verb | undefined,
    message: string,
  ) {
    super(message)
  }
}

function out(text: string): void {
  process.stdout.write(text)
}

function err(text: string): void {
  process.stderr.write(text)
}

/** Runs the command line `argv` (without node and the script) and resolves its exit status. */
export async function main(argv: string[]): Promise<number> {
  // `instance-lock status | head -1`: a closed pipe is not an error worth a stack trace.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e
  })
  const [verb, ...rest] = argv
  try {
    // --postgres URL (or INSTANCE_LOCK_POSTGRES): the verb runs on the PostgreSQL backend.
    const pg = verb === 'status' || verb === 'stop' || verb === 'run' ? postgresUrl(rest) : undefined
    if (pg !== undefined && !rest.includes('--help') && !rest.includes('-h')) {
      return await postgresCli(verb as 'status' | 'stop' | 'run', rest, pg, {
        out,
        err,
        usage: (v, message) => new UsageError(v, message),
        // dist/postgres.js, the entry point of instance-lock/postgres: loaded only here.
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        load: () => require('./postgres.js') as typeof import('../backends/postgres/index.js'),
      })
    }
    switch (verb) {
      case 'status':
        return status(rest)
      case 'stop':
        return await stopVerb(rest)
      case 'run':
        return await run(rest)
      case 'wait':
        return await waitVerb(rest)
      case 'send':
        return await sendVerb(rest)
      case '-h':
      case '--help':
      case 'help': {
        const topic = rest[0]
        if (topic === 'status' || topic === 'stop' || topic === 'run' || topic === 'wait' || topic === 'send') out(HELP[topic])
        else if (topic === undefined) out(HELP.main)
        else throw new UsageError(undefined, `no help for ${JSON.stringify(topic)}: the commands are status, stop, run, wait and send`)
        return 0
      }
      case '--version':
        out(`${version()}\n`)
        return 0
      case undefined:
        throw new UsageError(undefined, 'missing command: status, stop, run, wait or send')
      default:
        throw new UsageError(undefined, `unknown command ${JSON.stringify(verb)}: the commands are status, stop, run, wait and send`)
    }
  } catch (e) {
    if (e instanceof UsageError) {
      const more = e.verb === undefined ? "Run 'instance-lock --help' for help." : `Run 'instance-lock ${e.verb} --help' for help.`
      const usage = e.verb === undefined ? `Usage:\n  ${Object.values(SYNOPSIS).join('\n  ')}` : `Usage: ${SYNOPSIS[e.verb]}`
      err(`instance-lock: ${e.message}\n${usage}\n${more}\n`)
      return EXIT_USAGE
    }
    err(`instance-lock: ${(e as Error).message}\n`)
    return EXIT_FAILED
  }
}

function version(): string {
  const pkg = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }
  return pkg.version
}

const IDENTITY_OPTIONS = {
  scope: { type: 'string' },
  key: { type: 'string' },
  dir: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const

type Values = Record<string, string | boolean | undefined>

function parse(verb: Verb, args: string[], options: Record<string, { type: 'string' | 'boolean' }>): { values: Values; positionals: string[] } {
  try {
    const r = parseArgs({ args, options: { ...IDENTITY_OPTIONS, ...options }, allowPositionals: true, strict: true })
    return { values: r.values, positionals: r.positionals }
  } catch (e) {
    let message = (e as Error).message.replace(/\s*\n\s*/g, ' ')
    // Its advice to put an unknown option after '--' would mislead here
    // (after '--' comes `run`'s COMMAND): keep the sentence naming the option.
    if ((e as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') message = message.split('. ')[0]!
    throw new UsageError(
      verb,
      message.replace(/^\w/, (c) => c.toLowerCase()),
    )
  }
}

/** Applies a library check to a command-line value, turning its error into bad usage. */
function usage<T>(verb: Verb, check: () => T): T {
  try {
    return check()
  } catch (e) {
    const code = (e as { code?: string }).code
    if (code === 'ERR_INVALID_ARG_VALUE' || code === 'ERR_INVALID_ARG_TYPE') {
      const message = (e as Error).message.replace(/`(\w+)`/, (_, n: string) => (n === 'name' ? 'NAME' : `--${n}`))
      throw new UsageError(
        verb,
        message.replace(/^\w/, (c) => c.toLowerCase()),
      )
    }
    throw e
  }
}

function identity(verb: Verb, name: string | undefined, v: Values): LockOptions & { name: string | undefined } {
  const o: LockOptions & { name: string | undefined } = { name: name === undefined ? undefined : usage(verb, () => checkName(name)) }
  o.scope = usage(verb, () => checkScope(v.scope))
  const key = usage(verb, () => checkKey(v.key))
  if (key !== undefined) o.key = key
  const dir = usage(verb, () => checkDir(v.dir))
  if (dir !== undefined) o.dir = dir
  return o
}

/** The directory to name in a suggested command, when the user chose one. */
function dirArg(o: LockOptions): string | undefined {
  return o.dir === undefined ? undefined : resolvePath(o.dir)
}

function milliseconds(verb: Verb, option: string, value: string): number {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new UsageError(verb, `${option} expects a whole number of milliseconds, got ${JSON.stringify(value)}`)
  }
  return Number(value)
}

function signalName(value: string): NodeJS.Signals {
  const signals = constants.signals as Record<string, number>
  const upper = value.toUpperCase()
  const name = /^\d+$/.test(upper) ? Object.keys(signals).find((s) => signals[s] === Number(upper)) : upper.startsWith('SIG') ? upper : `SIG${upper}`
  if (name === undefined || !Object.hasOwn(signals, name)) {
    throw new UsageError('stop', `unknown signal ${JSON.stringify(value)}: use a name such as TERM, INT, HUP or KILL`)
  }
  return name as NodeJS.Signals
}

// ---------------------------------------------------------------------------
// status

function status(args: string[]): number {
  const { values, positionals } = parse('status', args, { all: { type: 'boolean' }, json: { type: 'boolean' } })
  if (values.help === true) {
    out(HELP.status)
    return 0
  }
  if (positionals.length > 1) throw new UsageError('status', `expected at most one NAME, got ${positionals.map((p) => JSON.stringify(p)).join(' ')}`)
  const o = identity('status', positionals[0], values)
  if (o.name === undefined) {
    if (o.key !== undefined) throw new UsageError('status', '--key needs a NAME: instance-lock status NAME --key K')
    // A directory of the user's choosing holds both scopes' lock files.
    const scopes: Scope[] = o.dir !== undefined && values.scope === undefined ? ['user', 'machine'] : [o.scope!]
    const all = scopes.flatMap((scope) => list({ scope, ...(o.dir === undefined ? {} : { dir: o.dir }) })).sort(byIdentity)
    const shown = values.all === true ? all : all.filter((s) => s.locked)
    if (values.json === true) out(`${JSON.stringify(shown, null, 2)}\n`)
    else if (shown.length > 0) out(statusTable(shown, scopes.length > 1))
    else {
      const where = o.dir === undefined ? `in the ${o.scope} scope` : `in ${resolvePath(o.dir)}`
      out(all.length === 0 ? `No locks ${where}\n` : `No locks held ${where} (${all.length} free; --all lists them)\n`)
    }
    return 0
  }
  const s = inspect(o.name, o)
  if (values.json === true) out(`${JSON.stringify(s, null, 2)}\n`)
  else out(statusText(s))
  if (!s.locked) err(elsewhere('status', s, o.dir))
  return s.locked ? 0 : EXIT_FREE
}

/** By name, then key (none first), then scope (user first). */
function byIdentity(a: LockStatus, b: LockStatus): number {
  return compare(a.name, b.name) || compare(a.key ?? '', b.key ?? '') || compare(a.scope === 'user' ? 0 : 1, b.scope === 'user' ? 0 : 1)
}

function compare<T extends string | number>(a: T, b: T): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/**
 * For a lock that is not held: the held locks the user may have meant,
 * with the command that reaches each. Those of the same name in the other
 * scope or with another key (or none), since a missing `--scope machine` or
 * `--key` must not look like "nothing runs"; failing those, for a name no
 * lock file has, held locks whose names are a typo away. Empty if none.
 */
function elsewhere(verb: 'status' | 'stop', wanted: { name: string; key?: string | undefined; scope: LockStatus['scope'] }, dir: string | undefined): string {
  const all: LockStatus[] = []
  for (const scope of ['user', 'machine'] as const) {
    try {
      all.push(...list({ scope, ...(dir === undefined ? {} : { dir }) }))
    } catch {
      // A scope that cannot be read has nothing to suggest.
    }
  }
  all.sort(byIdentity)
  const { name } = wanted
  const command = (s: LockStatus): string => {
    const args = ['instance-lock', verb, s.name]
    if (s.scope === 'machine') args.push('--scope', 'machine')
    if (s.key !== undefined) args.push('--key', shellQuote(s.key))
    if (dir !== undefined) args.push('--dir', shellQuote(resolvePath(dir)))
    return args.join(' ')
  }
  const lines: string[] = []
  for (const s of all) {
    if (!s.locked || s.name !== name || (s.scope === wanted.scope && s.key === wanted.key)) continue
    const how: string[] = []
    if (s.scope !== wanted.scope) how.push(`in ${s.scope} scope`)
    if (s.key !== undefined) how.push(`with key ${JSON.stringify(s.key)}`)
    else if (hasKeyHash(s)) {
      // Only a hash of the key is in the file name, and the record that
      // tells the key cannot be read: no command can be given.
      lines.push(`instance-lock: "${name}" is held ${[...how, 'with a key its holder record does not show'].join(' ')} (${s.path})\n`)
      continue
    } else if (wanted.key !== undefined) how.push('without a key')
    lines.push(`instance-lock: "${name}" is held ${how.join(' ')}: ${command(s)}\n`)
  }
  if (lines.length > 0 || all.some((s) => s.name === name)) return lines.join('')
  const near = all.filter((s) => s.locked && !(s.key === undefined && hasKeyHash(s)) && editDistance(s.name, name) <= 2).slice(0, 5)
  if (near.length === 0) return ''
  return `instance-lock: no lock named "${name}" exists; held with a similar name:\n${near.map((s) => `  ${command(s)}\n`).join('')}`
}

/** The lock file (or mutex) name carries a key's hash: `NAME@HASH`. */
function hasKeyHash(s: LockStatus): boolean {
  return /@[0-9a-f]{32}/.test(s.path.slice(Math.max(s.path.lastIndexOf('/'), s.path.lastIndexOf('\\')) + 1))
}

/** Levenshtein distance of two names (at most 64 characters each). */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)))
    prev = row
  }
  return prev[b.length]!
}

// ---------------------------------------------------------------------------
// stop

/** The one NAME a verb takes; `what` says what it is for when it is missing. */
function oneName(verb: Verb, positionals: string[], what: string): string {
  if (positionals.length === 1) return positionals[0]!
  throw new UsageError(verb, positionals.length === 0 ? `missing NAME: ${what}` : `expected one NAME, got ${positionals.map((p) => JSON.stringify(p)).join(' ')}`)
}

async function stopVerb(args: string[]): Promise<number> {
  const { values, positionals } = parse('stop', args, { timeout: { type: 'string' }, signal: { type: 'string' }, force: { type: 'boolean' } })
  if (values.help === true) {
    out(HELP.stop)
    return 0
  }
  const o = identity('stop', oneName('stop', positionals, 'which lock to stop'), values)
  const timeout = values.timeout === undefined ? DEFAULT_TIMEOUT : milliseconds('stop', '--timeout', values.timeout as string)
  const signal = values.signal === undefined ? 'SIGTERM' : signalName(values.signal as string)
  const force = values.force === true
  const { name, ...opts } = o
  const which = identify(name!, opts)
  const r = await stop(name!, { ...opts, signal, timeout, force })
  const report = stopReport(describeLock(which), r, { timeout, signal })
  if (report.out !== undefined) out(report.out)
  if (report.err !== undefined) err(report.err)
  // Free, not taken by a successor; and if nothing was signalled, it was not
  // held at all: perhaps another lock was meant.
  const free = r.stopped && r.successor === undefined
  if (free && r.pid === undefined) err(elsewhere('stop', which, o.dir))
  return free ? 0 : EXIT_HELD
}

// ---------------------------------------------------------------------------
// wait

async function waitVerb(args: string[]): Promise<number> {
  const { values, positionals } = parse('wait', args, { ready: { type: 'boolean' }, timeout: { type: 'string' }, json: { type: 'boolean' } })
  if (values.help === true) {
    out(HELP.wait)
    return 0
  }
  const { name, ...opts } = identity('wait', oneName('wait', positionals, 'which lock to wait for'), values)
  const timeout = values.timeout === undefined ? DEFAULT_WAIT_FOR_TIMEOUT : milliseconds('wait', '--timeout', values.timeout as string)
  let s: LockStatus
  try {
    s = await waitFor(name!, { ...opts, ready: values.ready === true, timeout })
  } catch (e) {
    if ((e as { code?: string }).code !== 'ETIMEDOUT') throw e
    err(`instance-lock: ${(e as Error).message}\n`)
    return EXIT_TIMEOUT
  }
  out(values.json === true ? `${JSON.stringify(s, null, 2)}\n` : statusText(s))
  return 0
}

// ---------------------------------------------------------------------------
// send

async function sendVerb(args: string[]): Promise<number> {
  const { values, positionals } = parse('send', args, { json: { type: 'string' }, timeout: { type: 'string' } })
  if (values.help === true) {
    out(HELP.send)
    return 0
  }
  const { name, ...opts } = identity('send', oneName('send', positionals, 'which lock to send to'), values)
  const timeout = values.timeout === undefined ? undefined : milliseconds('send', '--timeout', values.timeout as string)
  let data: unknown
  if (values.json !== undefined) {
    try {
      data = JSON.parse(values.json as string)
    } catch {
      throw new UsageError('send', `--json expects a JSON value such as '{"reload":true}', got ${JSON.stringify(values.json)}`)
    }
  }
  let reply: unknown
  try {
    reply = await send(name!, data, timeout === undefined ? opts : { ...opts, timeout })
  } catch (e) {
    const code = (e as { code?: string }).code
    // Data over the limit: bad usage, as the library's checks are everywhere here.
    if (code === 'ERR_INVALID_ARG_VALUE' || code === 'ERR_INVALID_ARG_TYPE') {
      return usage('send', () => {
        throw e
      })
    }
    if (code === 'ENOTRUNNING') {
      err(`${(e as Error).message}\n`)
      return EXIT_FREE
    }
    if (code === 'ENOLISTENER' || code === 'ETIMEDOUT' || code === 'EREMOTE') {
      err(`instance-lock: ${(e as Error).message}\n`)
      return EXIT_NO_REPLY
    }
    throw e
  }
  out(`${JSON.stringify(reply) ?? 'null'}\n`)
  return 0
}

// ---------------------------------------------------------------------------
// run

async function run(args: string[]): Promise<number> {
  const sep = args.indexOf('--')
  const command = sep < 0 ? [] : args.slice(sep + 1)
  // `--wait` takes an optional value, which parseArgs cannot express: a bare
  // `--wait` is `--wait=` (no limit), so `--wait 5000` is refused, not guessed.
  const own = (sep < 0 ? args : args.slice(0, sep)).map((a) => (a === '--wait' ? '--wait=' : a))
  const { values, positionals } = parse('run', own, RUN_OPTIONS)
  if (values.help === true) {
    out(HELP.run)
    return 0
  }
  if (positionals.length === 0) throw new UsageError('run', 'missing NAME: which lock to hold while COMMAND runs')
  if (positionals.length > 1) {
    const extra = positionals[1]!
    throw new UsageError(
      'run',
      sep < 0
        ? `missing '--' before COMMAND: instance-lock run ${positionals[0]} -- ${positionals.slice(1).join(' ')}`
        : /^\d+$/.test(extra) && values.wait === ''
          ? `unexpected argument ${JSON.stringify(extra)}: to wait at most ${extra} ms write --wait=${extra}`
          : `unexpected argument ${JSON.stringify(extra)} before '--'`,
    )
  }
  if (command.length === 0) throw new UsageError('run', `missing COMMAND after '--'`)
  const o = identity('run', positionals[0], values)
  if (values.wait !== undefined && values.replace === true) throw new UsageError('run', '--wait and --replace exclude each other: wait for the holder, or stop it')
  if (values.timeout !== undefined && values.replace !== true) throw new UsageError('run', '--timeout goes with --replace; to wait at most MS ms for the lock, write --wait=MS')
  const wait = values.wait === undefined || values.wait === '' ? undefined : milliseconds('run', '--wait', values.wait as string)
  const timeout = values.timeout === undefined ? DEFAULT_TIMEOUT : milliseconds('run', '--timeout', values.timeout as string)
  let conflictExit = 1
  if (values['conflict-exit-code'] !== undefined) {
    const v = values['conflict-exit-code'] as string
    if (!/^\d{1,3}$/.test(v) || Number(v) > 255) throw new UsageError('run', `--conflict-exit-code expects a number from 0 to 255, got ${JSON.stringify(v)}`)
    conflictExit = Number(v)
  }
  // COMMAND is recorded for status, cut short past 1 KiB (it is for people
  // to read); the user's --data goes beside it (and wins), and the two
  // together must fit a record as --data alone must.
  const shown = command.map(shellQuote).join(' ')
  const data = { command: shown.length > 1024 ? `${shown.slice(0, 1024)}…` : shown, ...(values.data === undefined ? {} : dataArg(values.data as string)) }
  usage('run', () => checkData(data))
  const opts: LockOptions = { scope: o.scope!, ...(o.key === undefined ? {} : { key: o.key }), ...(o.dir === undefined ? {} : { dir: o.dir }), data }

  let held: Lock
  try {
    if (values.replace === true) held = await singleInstance(o.name!, { ...opts, onLocked: 'replace', timeout })
    else if (values.wait !== undefined) held = await lock(o.name!, { ...opts, ...(wait === undefined ? {} : { timeout: wait }) })
    else held = tryLock(o.name!, opts)
  } catch (e) {
    if (!(e instanceof LockedError)) throw e
    if (values.quiet === true) return conflictExit
    let text = conflictMessage(identify(o.name!, opts), e.holder, dirArg(o))
    if (values.replace === true) text += `  it could not be replaced: ${e.message}\n`
    else if (values.wait !== undefined) text += `  still held after waiting ${wait} ms\n`
    else text += '  or run with --wait to wait for it, or with --replace to stop it first\n'
    err(text)
    return conflictExit
  }
  return runHolding(held, command, { inherit: values['no-inherit'] !== true, ready: values.ready === true })
}

/** `--data JSON`: a JSON object, checked as `data` is by the library. */
function dataArg(text: string): Record<string, unknown> {
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch {
    throw new UsageError('run', `--data expects a JSON object such as '{"port":5858}', got ${JSON.stringify(text)}`)
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new UsageError('run', `--data expects a JSON object such as '{"port":5858}', got ${JSON.stringify(text)}`)
  }
  usage('run', () => checkData(data))
  return data as Record<string, unknown>
}

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']

function runHolding(held: Lock, command: string[], how: { inherit: boolean; ready: boolean }): Promise<number> {
  // Unix: COMMAND gets the lock's descriptor as its fd 3 (the dup2 into the
  // child clears close-on-exec), so it holds the lock itself, as under
  // flock(1), and the lock outlives this process if it is killed. Windows has
  // no such inheritance, and --no-inherit (flock -o) asks for none: this
  // process holds the lock until COMMAND exits (the descriptor is
  // close-on-exec, so nothing COMMAND starts can keep it).
  const passed = how.inherit ? passOn(held) : undefined
  const stdio: StdioOptions = passed !== undefined ? ['inherit', 'inherit', 'inherit', passed.fd] : 'inherit'
  return new Promise((resolve) => {
    let child: ChildProcess
    try {
      child = spawn(command[0]!, command.slice(1), { stdio })
    } catch (e) {
      held.release()
      err(`instance-lock: cannot run ${JSON.stringify(command[0])}: ${(e as Error).message}\n`)
      resolve(EXIT_CANNOT_RUN)
      return
    }
    const forward = (signal: NodeJS.Signals): void => {
      child.kill(signal)
    }
    for (const s of FORWARDED) process.on(s, forward)
    let settled = false
    const finish = (code: number): void => {
      if (settled) return
      settled = true
      for (const s of FORWARDED) process.off(s, forward)
      // Whatever COMMAND passed the descriptor on to keeps holding the lock.
      if (passed !== undefined) passed.letGo()
      else held.release()
      resolve(code)
    }
    // The record names this process, which holds the lock until COMMAND exits
    // and passes signals on to it: status, stop and the conflict message all
    // name it. Once it is gone, they name whoever COMMAND left holding the
    // lock, as the kernel shows it. 'spawn': COMMAND has been executed (a
    // command that cannot be run gets 'error' instead, and is never shown as
    // ready).
    if (how.ready && child.pid !== undefined) {
      child.once('spawn', () => {
        // Not after COMMAND's exit released the lock.
        if (held.released) return
        try {
          held.ready()
        } catch {
          // A lock file another user created is open read-only here, so its
          // record cannot be written; the record is information only and
          // COMMAND runs all the same.
        }
      })
    }
    child.once('error', (e: NodeJS.ErrnoException) => {
      err(`instance-lock: cannot run ${JSON.stringify(command[0])}: ${e.message}\n`)
      finish(e.code === 'ENOENT' ? EXIT_NOT_FOUND : EXIT_CANNOT_RUN)
    })
    child.once('exit', (code, signal) => {
      finish(code ?? 128 + ((constants.signals as Record<string, number>)[signal!] ?? 0))
    })
  })
}
