// The wire format of messages, the same on a Unix socket and a Windows pipe:
// frames of [length: uint32 big-endian][type: uint8][payload: length bytes].
// A request is a HELLO frame (the sender's argv and cwd, as JSON) and a DATA
// frame (the JSON of `data`, empty for none); the answer is one REPLY frame
// (the JSON of the handler's value, empty for undefined) or one ERROR frame
// (the message of what the handler threw). Every payload is at most
// MAX_PAYLOAD bytes: a reader knows from the first five bytes whether a
// frame is acceptable, and never buffers more than one frame's worth.

export const MAX_PAYLOAD = 64 * 1024

export const HELLO = 1
export const DATA = 2
export const REPLY = 3
export const ERROR = 4

export interface Frame {
  type: number
  payload: Buffer
}

export function encode(type: number, payload: string): Buffer {
  const body = Buffer.from(payload, 'utf8')
  if (body.length > MAX_PAYLOAD) throw new RangeError(`frame payload of ${body.length} bytes exceeds ${MAX_PAYLOAD}`)
  const out = Buffer.allocUnsafe(5 + body.length)
  out.writeUInt32BE(body.length, 0)
  out[4] = type
  body.copy(out, 5)
  return out
}

/** A frame that breaks the format: its reader drops the connection. */
export class FrameError extends Error {}

/**
 * Cuts a byte stream into frames of the expected types. Anything else (an
 * unknown type, a payload over the limit) throws FrameError as soon as the
 * header shows it.
 */
export class Decoder {
  #buf: Buffer = Buffer.alloc(0)
  readonly #types: readonly number[]

  constructor(types: readonly number[]) {
    this.#types = types
  }

  /** The frames completed by `chunk`, in order. */
  push(chunk: Buffer): Frame[] {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk])
    const out: Frame[] = []
    while (this.#buf.length >= 5) {
      const length = this.#buf.readUInt32BE(0)
      const type = this.#buf[4]!
      if (length > MAX_PAYLOAD) throw new FrameError(`frame of ${length} bytes exceeds ${MAX_PAYLOAD}`)
      if (!this.#types.includes(type)) throw new FrameError(`unexpected frame type ${type}`)
      if (this.#buf.length < 5 + length) break
      out.push({ type, payload: this.#buf.subarray(5, 5 + length) })
      this.#buf = this.#buf.subarray(5 + length)
    }
    return out
  }

  /** Bytes received that do not make a whole frame yet. */
  get pending(): number {
    return this.#buf.length
  }
}
