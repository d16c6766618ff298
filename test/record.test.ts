import os from 'node:os'
import { describe, expect, it } from 'vitest'
import { inspect, tryLock } from '../src/index.js'
import { isoAt, parseRecord } from '../src/core/record.js'
import { tmpDir, uniqueName } from './helpers.js'

describe('holder record timestamps', () => {
  it('formats every millisecond exactly as Date#toISOString does', () => {
    const edges = [
      0,
      1,
      999,
      1000,
      59_999,
      60_000,
      3_599_999,
      86_399_999,
      86_400_000,
      Date.UTC(1972, 1, 29, 12),
      Date.UTC(1999, 11, 31, 23, 59, 59, 999),
      Date.UTC(2000, 0, 1),
      Date.UTC(2000, 1, 29, 23, 59, 59, 999),
      Date.UTC(2000, 2, 1),
      Date.UTC(2038, 0, 19, 3, 14, 8),
      Date.UTC(2100, 1, 28, 23, 59, 59, 999),
      Date.UTC(2100, 2, 1),
      Date.UTC(2400, 1, 29),
      Date.UTC(9999, 11, 31, 23, 59, 59, 999),
      Date.now(),
    ]
    for (const ms of edges) expect(isoAt(ms), String(ms)).toBe(new Date(ms).toISOString())
    const end = Date.UTC(10000, 0, 1)
    for (let i = 0; i < 100_000; i++) {
      const ms = Math.floor(Math.random() * end)
      if (isoAt(ms) !== new Date(ms).toISOString()) expect(isoAt(ms), String(ms)).toBe(new Date(ms).toISOString())
    }
  })

  it('answers a repeated millisecond from its cache and a new one afresh', () => {
    const a = Date.UTC(2026, 10, 22, 7, 50, 0, 5)
    expect(isoAt(a)).toBe('2026-11-22T07:50:00.005Z')
    expect(isoAt(a)).toBe('2026-11-22T07:50:00.005Z')
    expect(isoAt(a + 1)).toBe('2026-11-22T07:50:00.006Z')
  })

  it('gives every reader of the same record its own holder object', () => {
    const text = '{"pid":4242,"hostname":"h","startedAt":"2026-11-22T07:50:00.005Z","name":"web","scope":"user"}'
    const a = parseRecord(text, { name: 'web', scope: 'user' })!
    a.pid = 1
    const b = parseRecord(text, { name: 'web', scope: 'user' })!
    expect(b).toEqual({ pid: 4242, hostname: 'h', startedAt: '2026-11-22T07:50:00.005Z', name: 'web', scope: 'user' })
    expect(b).not.toBe(a)
    expect(parseRecord(text, { name: 'other', scope: 'user' })).toBeUndefined()
    expect(parseRecord(text, { name: 'web', scope: 'machine' })).toBeUndefined()

    const withData = '{"pid":4242,"hostname":"h","startedAt":"x","name":"web","scope":"user","data":{"port":8080}}'
    const c = parseRecord(withData)!
    c.data!.port = 1
    expect(parseRecord(withData)!.data).toEqual({ port: 8080 })
  })
})

describe('holder record', () => {
  it('names the host as os.hostname() does (the addon asks gethostname() on Unix)', () => {
    const dir = tmpDir()
    const name = uniqueName()
    const l = tryLock(name, { dir })
    try {
      expect(l.holder.hostname).toBe(os.hostname())
      expect(inspect(name, { dir }).holder?.hostname).toBe(os.hostname())
    } finally {
      l.release()
    }
  })
})
