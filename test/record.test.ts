import os from 'node:os'
import { describe, expect, it } from 'vitest'
import { inspect, tryLock } from '../src/index.js'
import { makeRecord, parseRecord, recordedProcess, withProcessStart } from '../src/core/record.js'
import { tmpDir, uniqueName } from './helpers.js'

describe('holder records', () => {
  it('carries a process creation time (Windows) as a field of the record, read back with its pid', () => {
    const text = '{"pid":4242,"hostname":"h\\u00e9","startedAt":"2026-11-22T07:50:00.005Z","name":"web","scope":"user","data":{"a":"}"}}'
    const stamped = withProcessStart(text, '133800000000000000')
    expect(JSON.parse(stamped)).toEqual({ ...JSON.parse(text), processStartTime: '133800000000000000' })
    expect(parseRecord(stamped, { name: 'web', scope: 'user' })).toEqual(parseRecord(text, { name: 'web', scope: 'user' }))
    expect(recordedProcess(stamped)).toEqual({ pid: 4242, start: '133800000000000000' })
    expect(recordedProcess(text)).toEqual({ pid: 4242, start: undefined })
    for (const bad of ['', 'null', '{"pid":0}', '{"pid":1.5}', '{"pid":"7"}', '{"pid":7']) expect(recordedProcess(bad), bad).toBeNull()
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

  it('is one format for local and PostgreSQL locks, each read only as its own', () => {
    const loc = { name: 'web', key: 'k', scope: 'cluster' as const }
    const text = makeRecord('db-host', loc, '{"port":1}', Date.UTC(2026, 11, 3, 12, 0, 0, 7), 4242, true)
    expect(parseRecord(text, loc)).toEqual({
      pid: 4242,
      hostname: 'db-host',
      startedAt: '2026-12-03T12:00:00.007Z',
      name: 'web',
      key: 'k',
      scope: 'cluster',
      data: { port: 1 },
      ready: true,
    })
    // Never taken for a holder of a lock of this machine, nor the other way round.
    expect(parseRecord(text)).toBeUndefined()
    expect(parseRecord(text, { name: 'web', scope: 'user' })).toBeUndefined()
    const local = makeRecord('h', { name: 'web', key: undefined, scope: 'user' }, undefined, 0)
    expect(parseRecord(local, { name: 'web', scope: 'user' })).toMatchObject({ hostname: 'h', scope: 'user' })
    expect(parseRecord(local, { name: 'web', scope: 'cluster' })).toBeUndefined()
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
