import { describe, expect, it } from 'vitest'
import { inspect, tryLock, type Lock } from '../src/index.js'
import { tmpDir, uniqueName } from './helpers.js'

describe('using', () => {
  it('releases at the end of the block', () => {
    const dir = tmpDir()
    const name = uniqueName()
    let seen: Lock
    {
      using lock = tryLock(name, { dir })
      seen = lock
      expect(inspect(name, { dir }).locked).toBe(true)
    }
    expect(seen.released).toBe(true)
    expect(inspect(name, { dir }).locked).toBe(false)
  })

  it('releases when the block throws', () => {
    const dir = tmpDir()
    const name = uniqueName()
    expect(() => {
      using lock = tryLock(name, { dir })
      void lock
      throw new Error('boom')
    }).toThrow('boom')
    expect(inspect(name, { dir }).locked).toBe(false)
  })

  it('await using: releases at the end of the block, as a PostgreSQL lock does', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    let seen: Lock
    {
      await using lock = tryLock(name, { dir })
      seen = lock
      expect(inspect(name, { dir }).locked).toBe(true)
    }
    expect(seen.released).toBe(true)
    expect(inspect(name, { dir }).locked).toBe(false)
    // Idempotent, as release() is.
    await seen[Symbol.asyncDispose]()
  })
})
