import { invalidArgType, invalidArgValue, outOfRange } from '../../core/errors.js'

/**
 * What `postgres()` takes: a connection URL, or node-postgres's client
 * configuration (any `pg` ClientConfig field is passed on) plus the options
 * of this package.
 */
export interface PostgresConfig {
  connectionString?: string
  host?: string
  port?: number
  user?: string
  password?: string | (() => string | Promise<string>)
  database?: string
  ssl?: unknown
  application_name?: string
  /**
   * Milliseconds within which the holder is told (its `signal` aborts with
   * `ELOCKLOST`) that the server is unreachable; the server keeps the lock
   * at least twice as long. Default 5000, at least 500.
   */
  lostAfter?: number
  /** Milliseconds a connection may take, authentication included. Default 10000. */
  connectTimeout?: number
  /** The schema of the holder record table `instance_lock_holders`. Default `public`. */
  schema?: string
  [option: string]: unknown
}

export interface Settings {
  /** Passed to pg's Client, with our connection options added. */
  client: Record<string, unknown>
  lostAfter: number
  connectTimeout: number
  schema: string
  /** The server, as shown in messages and `Lock.path`: no user, no password. */
  where: string
  /** The URL the CLI's stop advice names, without the password. */
  url: string | undefined
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/

/** Checks the configuration before any connection is made. */
export function checkConfig(config: unknown): Settings {
  let c: Record<string, unknown>
  if (typeof config === 'string') c = { connectionString: config }
  else if (config !== null && typeof config === 'object' && !Array.isArray(config)) c = { ...(config as Record<string, unknown>) }
  else throw invalidArgType('config', 'a connection URL or a pg client configuration object', config)

  let url: URL | undefined
  if (c.connectionString !== undefined) {
    if (typeof c.connectionString !== 'string') throw invalidArgType('connectionString', 'a string', c.connectionString)
    try {
      url = new URL(c.connectionString)
    } catch {
      throw invalidArgValue('connectionString', 'expected a URL such as postgres://user:password@host:5432/database')
    }
    if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
      throw invalidArgValue('connectionString', `expected a postgres:// or postgresql:// URL, got ${JSON.stringify(url.protocol)}`)
    }
  }
  const lostAfter = number(c.lostAfter, 'lostAfter', 5000, 500)
  const connectTimeout = number(c.connectTimeout, 'connectTimeout', 10_000, 1)
  let schema = 'public'
  if (c.schema !== undefined) {
    if (typeof c.schema !== 'string') throw invalidArgType('schema', 'a string', c.schema)
    if (!IDENT.test(c.schema)) throw invalidArgValue('schema', 'expected an unquoted SQL identifier (letters, digits, _ and $, at most 63)')
    schema = c.schema
  }
  for (const k of ['lostAfter', 'connectTimeout', 'schema']) delete c[k]

  const host = url?.hostname || (typeof c.host === 'string' ? c.host : 'localhost')
  const port = url?.port || (typeof c.port === 'number' || typeof c.port === 'string' ? String(c.port) : '5432')
  const database = url?.pathname.slice(1) || (typeof c.database === 'string' ? c.database : '')
  const where = `postgres://${host.includes(':') ? `[${host}]` : host}:${port}/${database}`
  let shown: string | undefined
  if (url !== undefined) {
    const u = new URL(url.href)
    u.password = ''
    shown = u.href
  }
  return {
    client: {
      application_name: 'instance-lock',
      ...c,
      // The client half of lost-lock detection: the socket probes an idle
      // server, so a dead peer ends it. The heartbeat (see session.ts) is
      // what bounds the time; Node offers no TCP_USER_TIMEOUT to set.
      keepAlive: true,
      keepAliveInitialDelayMillis: Math.max(1000, Math.floor(lostAfter / 2)),
      connectionTimeoutMillis: connectTimeout,
    },
    lostAfter,
    connectTimeout,
    schema,
    where,
    url: shown,
  }
}

function number(value: unknown, name: string, fallback: number, min: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number') throw invalidArgType(name, 'a number', value)
  if (!Number.isFinite(value) || value < min) throw outOfRange(name, `a finite number of at least ${min}`, value)
  return value
}
