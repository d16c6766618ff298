import { connect, createServer, type Server, type Socket } from 'node:net'

/**
 * TCP proxies in front of the test server, each standing for a network
 * condition the tests need: a cable cut (stop forwarding, close nothing),
 * a connection dropped after some statements, and a transaction-mode pooler
 * (each statement to another server connection).
 */
export class Proxy {
  readonly server: Server
  port = 0
  readonly pairs: { client: Socket; upstream: Socket[] }[] = []
  #cut = false

  private constructor(server: Server) {
    this.server = server
  }

  /** Plain forwarding, until `cut()`. */
  static async forward(target: { host: string; port: number }): Promise<Proxy> {
    const box: { proxy?: Proxy } = {}
    const server = createServer((client) => {
      const up = connect(target.port, target.host)
      box.proxy!.pairs.push({ client, upstream: [up] })
      // After a cut, neither end hears of the other closing either.
      client.on('error', () => box.proxy!.#cut || up.destroy())
      up.on('error', () => box.proxy!.#cut || client.destroy())
      client.on('close', () => box.proxy!.#cut || up.destroy())
      up.on('close', () => box.proxy!.#cut || client.destroy())
      client.on('data', (d) => {
        if (!box.proxy!.#cut) up.write(d)
      })
      up.on('data', (d) => {
        if (!box.proxy!.#cut) client.write(d)
      })
    })
    const proxy = new Proxy(server)
    box.proxy = proxy
    await proxy.#listen()
    return proxy
  }

  /**
   * Speaks enough of the protocol to route whole statements: the startup is
   * replayed to `connections` server connections (cleartext password
   * authentication, as the test server uses), then each statement (a simple
   * Query, or extended messages up to Sync) goes to the next connection in
   * turn, as a transaction-mode pooler may do. `dropAfter`: after that many
   * statements, both sides are closed instead (a server gone mid-acquire).
   */
  static async statements(target: { host: string; port: number }, opts: { connections?: number; dropAfter?: number }): Promise<Proxy> {
    const box: { proxy?: Proxy } = {}
    const n = opts.connections ?? 1
    const server = createServer((client) => {
      const ups = Array.from({ length: n }, () => connect(target.port, target.host))
      box.proxy!.pairs.push({ client, upstream: ups })
      const closeAll = (): void => {
        client.destroy()
        for (const u of ups) u.destroy()
      }
      client.on('error', closeAll)
      client.on('close', closeAll)
      for (const u of ups) {
        u.on('error', closeAll)
        u.on('close', closeAll)
      }
      const startup: Buffer[] = []
      let started = false
      let buf = Buffer.alloc(0)
      let batch: Buffer[] = []
      let statements = 0
      let current = 0
      // The connection whose answers go to the client: the one the last
      // statement went to. Upstream 0 answers the startup; the others'
      // startup answers are dropped up to their first ReadyForQuery.
      let active = 0
      const ready = ups.map((_, i) => i === 0)
      ups.forEach((u, i) => {
        let ubuf = Buffer.alloc(0)
        u.on('data', (d) => {
          if (!ready[i]) {
            ubuf = Buffer.concat([ubuf, d])
            for (;;) {
              const msg = typed(ubuf)
              if (msg === undefined) return
              ubuf = ubuf.subarray(msg.length)
              if (msg[0] === 0x5a /* Z */) break
            }
            ready[i] = true
            d = ubuf
            if (d.length === 0) return
          }
          if (i === active) client.write(d)
        })
      })
      client.on('data', (d) => {
        buf = Buffer.concat([buf, d])
        for (;;) {
          if (!started) {
            // StartupMessage has no type byte; PasswordMessage ('p') follows.
            if (startup.length === 0) {
              if (buf.length < 4) return
              const len = buf.readInt32BE(0)
              if (buf.length < len) return
              const msg = buf.subarray(0, len)
              buf = buf.subarray(len)
              startup.push(msg)
              for (const u of ups) u.write(msg)
              continue
            }
            const msg = typed(buf)
            if (msg === undefined) return
            buf = buf.subarray(msg.length)
            if (msg[0] === 0x70 /* p */) {
              for (const u of ups) u.write(msg)
              started = true
            } else ups[0]!.write(msg)
            continue
          }
          const msg = typed(buf)
          if (msg === undefined) return
          buf = buf.subarray(msg.length)
          const type = String.fromCharCode(msg[0]!)
          if (type === 'X') {
            closeAll()
            return
          }
          batch.push(msg)
          if (type === 'Q' || type === 'S') {
            if (opts.dropAfter !== undefined && statements >= opts.dropAfter) {
              closeAll()
              return
            }
            active = current
            ups[current]!.write(Buffer.concat(batch))
            batch = []
            statements++
            current = (current + 1) % n
          }
        }
      })
    })
    const proxy = new Proxy(server)
    box.proxy = proxy
    await proxy.#listen()
    return proxy
  }

  /** Stops forwarding in both directions, closing nothing: a cable cut, as both ends see it. */
  cut(): void {
    this.#cut = true
  }

  /** Closes every connection to the server: what the server does once it gives up on a silent client. */
  dropUpstream(): void {
    for (const p of this.pairs) for (const u of p.upstream) u.destroy()
  }

  async close(): Promise<void> {
    for (const p of this.pairs) {
      p.client.destroy()
      for (const u of p.upstream) u.destroy()
    }
    await new Promise((r) => this.server.close(r))
  }

  async #listen(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r))
    this.port = (this.server.address() as { port: number }).port
  }
}

/** host and port of a postgres:// URL. */
export function target(url: string): { host: string; port: number } {
  const u = new URL(url)
  return { host: u.hostname, port: Number(u.port || 5432) }
}

/** The URL with host and port replaced by the proxy's. */
export function via(url: string, port: number): string {
  const u = new URL(url)
  u.hostname = '127.0.0.1'
  u.port = String(port)
  return u.href
}

/** The first whole message of the protocol in `buf` (a type byte, then its length), or undefined while incomplete. */
function typed(buf: Buffer): Buffer | undefined {
  if (buf.length < 5) return undefined
  const len = buf.readInt32BE(1)
  return buf.length < 1 + len ? undefined : buf.subarray(0, 1 + len)
}
