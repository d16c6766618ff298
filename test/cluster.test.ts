import { fork, spawnSync, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { inspect } from '../src/index.js'
import { FIXTURES, ROOT, tmpDir, uniqueName } from './helpers.js'

interface WorkerReport {
  pid: number
  isLock: boolean
  clusterPrimary?: number
  holderPid: number
  path: string
  released: boolean
  releasedAfter: boolean
  data?: Record<string, unknown>
  updateCode?: string
}
interface PrimaryReport {
  primary: number
  path: string
  workers: WorkerReport[]
  error?: string
  code?: number
}

const running: ChildProcess[] = []
afterEach(() => {
  for (const p of running.splice(0)) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL')
})

/** A node:cluster primary with two workers, each guarded on its first line; resolves with what they report. */
async function startCluster(name: string, dir: string, options: object = {}): Promise<{ proc: ChildProcess; report: PrimaryReport }> {
  const proc = fork(path.join(FIXTURES, 'cluster.cjs'), [name, dir, JSON.stringify(options)], { stdio: ['ignore', 'inherit', 'pipe', 'ipc'] })
  running.push(proc)
  let stderr = ''
  proc.stderr!.on('data', (d) => (stderr += d))
  const report = await new Promise<PrimaryReport>((resolve, reject) => {
    proc.once('message', (m) => resolve(m as PrimaryReport))
    proc.once('exit', (code) => reject(new Error(`the primary exited with ${code} before its workers reported: ${stderr}`)))
  })
  return { proc, report }
}

describe('node:cluster', () => {
  it.each([{ onLocked: 'exit' }, { onLocked: 'throw' }, { onLocked: 'replace' }])(
    "workers whose primary holds the lock go on (onLocked $onLocked), with a Lock that stands for the primary's",
    async (options) => {
      const name = uniqueName()
      const dir = tmpDir()
      const { proc, report } = await startCluster(name, dir, { ...options, data: { port: 8080 } })
      expect(report.error).toBeUndefined()
      expect(report.workers).toHaveLength(2)
      for (const w of report.workers) {
        expect(w.isLock).toBe(true)
        expect(w.clusterPrimary).toBe(report.primary)
        expect(w.holderPid).toBe(report.primary)
        expect(w.path).toBe(report.path)
        expect(w.data).toEqual({ port: 8080 })
        expect(w.released).toBe(false)
        // The record is the primary's; a worker's release() lets go of its handle only.
        expect(w.updateCode).toBe('ERR_INVALID_STATE')
        expect(w.releasedAfter).toBe(true)
      }
      const status = inspect(name, { dir })
      expect(status.locked).toBe(true)
      expect(status.holder?.pid).toBe(report.primary)
      expect(status.holder?.data).toEqual({ port: 8080 })
      expect(proc.exitCode).toBeNull()
    },
  )

  it('a second, independent primary still finds the lock held and exits', async () => {
    const name = uniqueName()
    const dir = tmpDir()
    const { report } = await startCluster(name, dir)
    expect(report.error).toBeUndefined()
    const second = spawnSync(process.execPath, [path.join(FIXTURES, 'cluster.cjs'), name, dir], { encoding: 'utf8', timeout: 30_000 })
    expect(second.status).toBe(1)
    expect(inspect(name, { dir }).holder?.pid).toBe(report.primary)
  })

  it('a guard outside any cluster never loads node:cluster', () => {
    const name = JSON.stringify(uniqueName())
    const dir = JSON.stringify(tmpDir())
    const r = spawnSync(
      process.execPath,
      [
        '-e',
        `
      const il = require('instance-lock')
      il.singleInstance(${name}, { dir: ${dir} })
      il.list({ dir: ${dir} })
      try { il.singleInstance(${name}, { dir: ${dir}, onLocked: 'throw' }) } catch (e) { console.log(e.code) }
      console.log(process.moduleLoadList.some((m) => /\\bcluster\\b/.test(m)))
    `,
      ],
      { cwd: ROOT, encoding: 'utf8', timeout: 30_000 },
    )
    expect(r.stderr).toBe('')
    expect(r.stdout.trim().split('\n')).toEqual(['ELOCKED', 'false'])
  })
})
