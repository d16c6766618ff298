import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Location } from '../src/core/backend.js'
import { endHolder } from '../src/api/stop.js'
import { KILL_WAIT, RECHECK, begin, next, type Observation, type Outcome, type Plan, type Step } from '../src/core/stopping.js'
import type { Holder } from '../src/api/types.js'

// Whom a stop signals, when it escalates, and what it concludes, as sequences
// of what the operating system is seen to say: no process is started, and
// every race is played out step by step. The same decisions drive stop(),
// `instance-lock stop` and singleInstance's replace (test/stop.test.ts,
// test/replace.test.ts play some of them with real processes).

const ME = process.pid

function rec(pid: number): Holder {
  return { pid, hostname: 'host', startedAt: '2024-01-01T00:00:00.000Z', name: 'web', scope: 'user' }
}
const A = rec(100) // the instance to stop, as its record names it
const B = rec(200) // a newcomer's own record
const M = rec(ME)

const T = (taker: number | undefined, ours = false): Observation => ({ taker, ours })
const H = (...holders: number[]): Observation => ({ holders })
const R = (...reached: number[]): Observation => ({ reached })
const FREE: Observation = { free: true }
const held = (holder?: Holder): Observation => ({ free: false, holder })

/** The instance `pid` is seen holding the lock, proven, taker unchanged. */
const proven = (pid = 100, r: Holder | undefined = A): Observation[] => [T(pid), held(r), H(pid), T(pid)]
const PROVEN = ['taker', 'look', 'holders', 'taker']
/** A wait that ran out, then who holds the lock and who took it. */
const after = (r: Holder | undefined, holders: number[], taker: number | undefined): Observation[] => [held(r), H(...holders), T(taker)]
/** A wait that ran out, the lock still held by `holders` of the instance (A, 100). */
const still = (holders = [100]): Observation[] => after(A, holders, 100)
const times = (n: number, o: Observation[]): Observation[] => Array.from({ length: n }, () => o).flat()

function show(step: Step): string {
  switch (step.do) {
    case 'signal':
      return `${step.signal} ${step.pids.join(' ')}`.trim()
    case 'wait':
      return `wait ${step.ms}`
    default:
      return step.do
  }
}

/**
 * Feeds `seen` to a stop, one observation per step, and lists the steps it
 * took. Time passes only in a wait that runs out: by the ms it was given.
 */
function play(plan: Partial<Plan>, seen: Observation[]): { steps: string[]; outcome: Outcome } {
  let { state, step } = begin({ signal: 'SIGTERM', timeout: 500, force: false, self: ME, ...plan })
  const steps: string[] = []
  let clock = 0
  for (const o of seen) {
    if (step.do === 'end') throw new Error(`ended after ${steps.join(', ')} with observations left`)
    steps.push(show(step))
    if (step.do === 'wait' && !('free' in o && o.free)) clock += step.ms
    ;({ state, step } = next(state, o, clock))
  }
  if (step.do !== 'end') throw new Error(`after ${steps.join(', ')}, no observation for ${show(step)}`)
  return { steps, outcome: step.outcome }
}

interface Case {
  name: string
  plan?: Partial<Plan>
  seen: Observation[]
  steps: string[]
  outcome: Outcome
}

// With the default plan of these tests (timeout 500) the SIGTERM phase waits
// 250, 250, then a last 0 ms past its deadline.
const RAN_OUT = ['wait 250', 'holders', 'taker', 'wait 250', 'holders', 'taker', 'wait 0', 'holders', 'taker']

const cases: Record<string, Case[]> = {
  'before anything is signalled': [
    {
      name: 'not held: stopped, nothing signalled, no pid (a replace has taken it)',
      seen: [T(undefined), FREE],
      steps: ['taker', 'look'],
      outcome: { state: 'free', forced: false },
    },
    {
      name: 'held, no holder proven, free at the second look: released in between, and its record is not reported',
      seen: [T(100), held(A), H(), FREE],
      steps: ['taker', 'look', 'holders', 'look'],
      outcome: { state: 'free', forced: false },
    },
    {
      name: 'nobody provable at two looks (another user, no /proc): unproven, nothing signalled',
      seen: [T(undefined), held(A), H(), held(A), H()],
      steps: ['taker', 'look', 'holders', 'look', 'holders'],
      outcome: { state: 'unproven', forced: false, holder: A },
    },
    {
      name: 'unproven: the second record read replaces the first',
      seen: [T(undefined), held(A), H(), held(B), H()],
      steps: ['taker', 'look', 'holders', 'look', 'holders'],
      outcome: { state: 'unproven', forced: false, holder: B },
    },
    {
      name: 'unproven: a second record that cannot be read keeps the first',
      seen: [T(undefined), held(A), H(), held(), H()],
      steps: ['taker', 'look', 'holders', 'look', 'holders'],
      outcome: { state: 'unproven', forced: false, holder: A },
    },
    {
      name: 'unproven, no record readable: no holder reported',
      seen: [T(undefined), held(), H(), held(), H()],
      steps: ['taker', 'look', 'holders', 'look', 'holders'],
      outcome: { state: 'unproven', forced: false },
    },
    {
      name: 'this process is never a holder to signal (its own stop wait holds the lock for a moment)',
      seen: [T(ME), held(M), H(ME), held(M), H(ME)],
      steps: ['taker', 'look', 'holders', 'look', 'holders'],
      outcome: { state: 'unproven', forced: false, holder: M },
    },
    {
      name: 'no holder proven at the first look, one at the second: it is signalled',
      seen: [T(100), held(A), H(), held(A), H(100), T(100), R(100), FREE],
      steps: ['taker', 'look', 'holders', 'look', 'holders', 'taker', 'SIGTERM 100', 'wait 250'],
      outcome: { state: 'free', pid: 100, forced: false, holder: A },
    },
    {
      name: 'the lock changed hands between the first look and the proof: the holders found are a newer instance, left alone',
      seen: [T(100), held(A), H(200), T(200), held(B)],
      steps: ['taker', 'look', 'holders', 'taker', 'read'],
      outcome: { state: 'gone', forced: false, successor: 200, holder: B },
    },
    {
      name: "changed hands: a record still naming the old instance is not reported as the newcomer's",
      seen: [T(100), held(A), H(200), T(200), held(A)],
      steps: ['taker', 'look', 'holders', 'taker', 'read'],
      outcome: { state: 'gone', forced: false, successor: 200 },
    },
    {
      name: 'changed hands, and the newcomer already gone when its record is read',
      seen: [T(100), held(A), H(200), T(200), FREE],
      steps: ['taker', 'look', 'holders', 'taker', 'read'],
      outcome: { state: 'gone', forced: false, successor: 200 },
    },
    {
      name: 'no taker known before the first look: the instance proven then is the one ended',
      seen: [T(undefined), held(B), H(200), T(200), R(200), FREE],
      steps: ['taker', 'look', 'holders', 'taker', 'SIGTERM 200', 'wait 250'],
      outcome: { state: 'free', pid: 200, forced: false, holder: B },
    },
    {
      name: 'no taker known once proven (taker outside this pid namespace): the proven holder is still signalled',
      seen: [T(100), held(A), H(100), T(undefined), R(100), FREE],
      steps: ['taker', 'look', 'holders', 'taker', 'SIGTERM 100', 'wait 250'],
      outcome: { state: 'free', pid: 100, forced: false, holder: A },
    },
  ],

  'the verified holder': [
    {
      name: 'signalled with SIGTERM, exits: free, with its pid',
      seen: [...proven(), R(100), FREE],
      steps: [...PROVEN, 'SIGTERM 100', 'wait 250'],
      outcome: { state: 'free', pid: 100, forced: false, holder: A },
    },
    {
      name: 'the signal asked for',
      plan: { signal: 'SIGUSR2' },
      seen: [...proven(), R(100), FREE],
      steps: [...PROVEN, 'SIGUSR2 100', 'wait 250'],
      outcome: { state: 'free', pid: 100, forced: false, holder: A },
    },
    {
      name: 'each proven holder is signalled; the first reached is reported',
      seen: [T(100), held(A), H(100, 101), T(100), R(100, 101), FREE],
      steps: [...PROVEN, 'SIGTERM 100 101', 'wait 250'],
      outcome: { state: 'free', pid: 100, forced: false, holder: A },
    },
    {
      name: 'a holder that exited before its signal is not reported: the next one reached is',
      seen: [T(100), held(A), H(100, 101), T(100), R(101), FREE],
      steps: [...PROVEN, 'SIGTERM 100 101', 'wait 250'],
      outcome: { state: 'free', pid: 101, forced: false, holder: A },
    },
    {
      name: 'exits on its own before its signal (its pid perhaps reused): free, nobody signalled, no pid',
      seen: [...proven(), R(), FREE],
      steps: [...PROVEN, 'SIGTERM 100', 'wait 250'],
      outcome: { state: 'free', forced: false, holder: A },
    },
    {
      name: 'proven again after its signal did not reach it: signalled again',
      seen: [...proven(), R(), ...still(), R(100), FREE],
      steps: [...PROVEN, 'SIGTERM 100', 'wait 250', 'holders', 'taker', 'SIGTERM 100', 'wait 250'],
      outcome: { state: 'free', pid: 100, forced: false, holder: A },
    },
    {
      name: 'ignores SIGTERM, no force: held once time runs out, signalled once',
      seen: [...proven(), R(100), ...times(3, still())],
      steps: [...PROVEN, 'SIGTERM 100', ...RAN_OUT],
      outcome: { state: 'held', pid: 100, forced: false, holder: A },
    },
    {
      name: 'ignores SIGTERM, force: SIGKILL to the holders proven then, and free',
      plan: { force: true },
      seen: [...proven(), R(100), ...times(3, still()), H(100), R(100), FREE],
      steps: [...PROVEN, 'SIGTERM 100', ...RAN_OUT, 'holders', 'SIGKILL 100', 'wait 250'],
      outcome: { state: 'free', pid: 100, forced: true, holder: A },
    },
    {
      name: 'force, but the holder exits just before its SIGKILL: not forced',
      plan: { force: true },
      seen: [...proven(), R(100), ...times(3, still()), H(100), R(), FREE],
      steps: [...PROVEN, 'SIGTERM 100', ...RAN_OUT, 'holders', 'SIGKILL 100', 'wait 250'],
      outcome: { state: 'free', pid: 100, forced: false, holder: A },
    },
    {
      name: 'force, but no holder proven any more at the SIGKILL: nobody killed, the lock waited for',
      plan: { force: true },
      seen: [...proven(), R(100), ...times(3, still()), H(), FREE],
      steps: [...PROVEN, 'SIGTERM 100', ...RAN_OUT, 'holders', 'wait 250'],
      outcome: { state: 'free', pid: 100, forced: false, holder: A },
    },
    {
      name: 'timeout 0: one look after the signal, then held',
      plan: { timeout: 0 },
      seen: [...proven(), R(100), ...still()],
      steps: [...PROVEN, 'SIGTERM 100', 'wait 0', 'holders', 'taker'],
      outcome: { state: 'held', pid: 100, forced: false, holder: A },
    },
    {
      name: 'held when time runs out, and no holder could be signalled: unproven, without a pid',
      plan: { timeout: 0 },
      seen: [T(4242), held(), H(4242), T(4242), R(), ...after(undefined, [4242], 4242)],
      steps: [...PROVEN, 'SIGTERM 4242', 'wait 0', 'holders', 'taker'],
      outcome: { state: 'unproven', forced: false },
    },
    {
      name: 'the latest readable record is reported',
      seen: [...proven(), R(100), held(), H(100), T(100), held(rec(101)), H(100), T(100), FREE],
      steps: [...PROVEN, 'SIGTERM 100', 'wait 250', 'holders', 'taker', 'wait 250', 'holders', 'taker', 'wait 0'],
      outcome: { state: 'free', pid: 100, forced: false, holder: rec(101) },
    },
  ],

  "a lock passed on (run's COMMAND): the taker stays, its heirs are the instance": [
    {
      name: 'the heir is signalled when found, once a phase, and the lock waited for',
      seen: [...proven(), R(100), ...still([101]), R(101), ...still([101]), FREE],
      steps: [...PROVEN, 'SIGTERM 100', 'wait 250', 'holders', 'taker', 'SIGTERM 101', 'wait 250', 'holders', 'taker', 'wait 0'],
      outcome: { state: 'free', pid: 100, forced: false, holder: A },
    },
    {
      name: 'a stubborn heir is killed with force: each phase signals it once',
      plan: { force: true },
      seen: [...proven(), R(100), ...still([101]), R(101), ...times(2, still([101])), H(101), R(101), FREE],
      steps: [
        ...PROVEN,
        'SIGTERM 100',
        'wait 250',
        'holders',
        'taker',
        'SIGTERM 101',
        'wait 250',
        'holders',
        'taker',
        'wait 0',
        'holders',
        'taker',
        'holders',
        'SIGKILL 101',
        'wait 250',
      ],
      outcome: { state: 'free', pid: 100, forced: true, holder: A },
    },
    {
      name: 'an heir first seen when time has run out is not signalled: held',
      seen: [...proven(), R(100), ...times(2, still()), ...still([101])],
      steps: [...PROVEN, 'SIGTERM 100', ...RAN_OUT],
      outcome: { state: 'held', pid: 100, forced: false, holder: A },
    },
    {
      name: 'this process among the holders is left out',
      seen: [...proven(), R(100), ...still([ME, 101]), R(101), FREE],
      steps: [...PROVEN, 'SIGTERM 100', 'wait 250', 'holders', 'taker', 'SIGTERM 101', 'wait 250'],
      outcome: { state: 'free', pid: 100, forced: false, holder: A },
    },
    {
      name: 'no taker known any more (it exited, outside this pid namespace): the heirs are still the instance',
      seen: [...proven(), R(100), held(A), H(101), T(undefined), R(101), FREE],
      steps: [...PROVEN, 'SIGTERM 100', 'wait 250', 'holders', 'taker', 'SIGTERM 101', 'wait 250'],
      outcome: { state: 'free', pid: 100, forced: false, holder: A },
    },
    {
      name: 'a holder we signalled taking the lock anew is the same instance',
      seen: [T(100), held(A), H(100, 101), T(100), R(100, 101), ...after(A, [101], 101), FREE],
      steps: [...PROVEN, 'SIGTERM 100 101', 'wait 250', 'holders', 'taker', 'wait 250'],
      outcome: { state: 'free', pid: 100, forced: false, holder: A },
    },
  ],

  'a newcomer took the lock after the instance let go: never signalled': [
    {
      name: 'its record a copy of the old one: gone, its record not reported as its own',
      seen: [...proven(), R(100), ...after(A, [200], 200), held(A)],
      steps: [...PROVEN, 'SIGTERM 100', 'wait 250', 'holders', 'taker', 'read'],
      outcome: { state: 'gone', pid: 100, forced: false, successor: 200 },
    },
    {
      name: 'its own record read: reported',
      seen: [...proven(), R(100), ...after(A, [200], 200), held(B)],
      steps: [...PROVEN, 'SIGTERM 100', 'wait 250', 'holders', 'taker', 'read'],
      outcome: { state: 'gone', pid: 100, forced: false, successor: 200, holder: B },
    },
    {
      name: 'seen first when time has run out: gone, not held',
      seen: [...proven(), R(100), ...times(2, still()), ...after(A, [200], 200), held(B)],
      steps: [...PROVEN, 'SIGTERM 100', ...RAN_OUT, 'read'],
      outcome: { state: 'gone', pid: 100, forced: false, successor: 200, holder: B },
    },
    {
      name: 'after the SIGKILL: gone, forced',
      plan: { force: true },
      seen: [...proven(), R(100), ...times(3, still()), H(100), R(100), ...after(A, [200], 200), held(B)],
      steps: [...PROVEN, 'SIGTERM 100', ...RAN_OUT, 'holders', 'SIGKILL 100', 'wait 250', 'holders', 'taker', 'read'],
      outcome: { state: 'gone', pid: 100, forced: true, successor: 200, holder: B },
    },
    {
      name: 'this process, waiting in lock(), took it: gone',
      seen: [...proven(), R(100), held(M), H(ME), T(ME, true), held(M)],
      steps: [...PROVEN, 'SIGTERM 100', 'wait 250', 'holders', 'taker', 'read'],
      outcome: { state: 'gone', pid: 100, forced: false, successor: ME, holder: M },
    },
    {
      name: 'this process holding it for a moment, not as a Lock (a wait cancelled as it got the lock): not a newcomer',
      seen: [...proven(), R(100), ...after(M, [ME], ME), FREE],
      steps: [...PROVEN, 'SIGTERM 100', 'wait 250', 'holders', 'taker', 'wait 250'],
      outcome: { state: 'free', pid: 100, forced: false, holder: M },
    },
  ],
}

describe('whom a stop signals, and what it concludes', () => {
  for (const [group, list] of Object.entries(cases)) {
    describe(group, () => {
      it.each(list)('$name', (c) => {
        expect(play(c.plan ?? {}, c.seen)).toEqual({ steps: c.steps, outcome: c.outcome })
      })
    })
  }
})

describe('when a stop escalates', () => {
  const waits = (steps: string[]): number[] => steps.filter((s) => s.startsWith('wait ')).map((s) => Number(s.slice(5)))

  it('waits in slices of at most RECHECK ms, the last one past the deadline', () => {
    const { steps } = play({ timeout: 10_000 }, [...proven(), R(100), ...times(10_000 / RECHECK + 1, still())])
    expect(waits(steps)).toEqual([...Array<number>(10_000 / RECHECK).fill(RECHECK), 0])
  })

  it('the deadline runs from the signal, and the slice before it is cut short', () => {
    let { state, step } = begin({ signal: 'SIGTERM', timeout: 500, force: false, self: ME })
    for (const o of proven()) ({ state, step } = next(state, o, 0))
    expect(step).toEqual({ do: 'signal', pids: [100], signal: 'SIGTERM' })
    ;({ state, step } = next(state, R(100), 1000))
    expect(step).toEqual({ do: 'wait', ms: 250 })
    for (const o of still()) ({ state, step } = next(state, o, 1400))
    expect(step).toEqual({ do: 'wait', ms: 100 })
    for (const o of still()) ({ state, step } = next(state, o, 1500))
    expect(step).toEqual({ do: 'wait', ms: 0 })
    for (const o of still()) ({ state, step } = next(state, o, 1500))
    expect(step).toEqual({ do: 'end', outcome: { state: 'held', pid: 100, forced: false, holder: A } })
  })

  it('the SIGKILL phase waits KILL_WAIT ms, or longer when the timeout is', () => {
    for (const timeout of [0, 500, KILL_WAIT + 1000]) {
      const term = waits(play({ timeout }, [...proven(), R(100), ...times(timeout / RECHECK + 1, still())]).steps)
      const seen = [...proven(), R(100), ...times(term.length, still()), H(100), R(100)]
      const kill = Math.max(timeout, KILL_WAIT)
      const { steps, outcome } = play({ timeout, force: true }, [...seen, ...times(kill / RECHECK + 1, still())])
      expect(
        waits(steps)
          .slice(term.length)
          .reduce((a, b) => a + b),
      ).toBe(kill)
      // Stuck in the kernel: held still after SIGKILL.
      expect(outcome).toEqual({ state: 'held', pid: 100, forced: true, holder: A })
    }
  })

  it('force, and not one holder could be signalled: each look tries again; unproven, not forced', () => {
    const unreached = after(undefined, [4242], 4242)
    const seen = [T(4242), held(), H(4242), T(4242), R(), ...unreached, H(4242), R(), ...times(KILL_WAIT / RECHECK, [...unreached, R()]), ...unreached]
    const { steps, outcome } = play({ timeout: 0, force: true }, seen)
    expect(steps.filter((s) => s.startsWith('SIG'))).toEqual(['SIGTERM 4242', ...Array<string>(KILL_WAIT / RECHECK + 1).fill('SIGKILL 4242')])
    expect(outcome).toEqual({ state: 'unproven', forced: false })
  })
})

describe('the decision is pure', () => {
  it('a state is not changed by the steps taken from it: one state, two futures', () => {
    let { state } = begin({ signal: 'SIGTERM', timeout: 500, force: false, self: ME })
    for (const o of [...proven(), R(100)]) ({ state } = next(state, o, 0))
    const copy = structuredClone(state)
    expect(next(state, FREE, 10).step).toEqual({ do: 'end', outcome: { state: 'free', pid: 100, forced: false, holder: A } })
    expect(next(state, held(B), 250).step).toEqual({ do: 'holders' })
    expect(state).toEqual(copy)
  })

  it('an observation that does not answer the step is refused', () => {
    const { state } = begin({ signal: 'SIGTERM', timeout: 500, force: false, self: ME })
    expect(() => next(state, H(100), 0)).toThrow()
  })
})

// The same scripts, carried out by endHolder over a backend that answers
// each call with the next observation (one `reached` answers all the signals
// of a step): every step is the one backend call it names, and the outcome
// is the decision's, with the lock a replace took.
const script = vi.hoisted(() => ({ seen: [] as object[], calls: [] as string[], clock: 0 }))
vi.mock('../src/backends/index.js', () => {
  const answer = <T>(k: string): T => {
    if ((script.seen[0] as { used?: true } | undefined)?.used) script.seen.shift()
    const o = script.seen.shift()
    if (o === undefined || !(k in o)) throw new Error(`${script.calls.at(-1)} answered with ${JSON.stringify(o)}`)
    return o as T
  }
  const sighting = (k: string): { held: boolean; record: string | null } => {
    const o = answer<{ free: boolean; holder?: Holder }>('free')
    script.calls.push(k)
    return { held: !o.free, record: o.holder === undefined ? null : JSON.stringify(o.holder) }
  }
  const backend = {
    taker: () => (script.calls.push('taker'), answer<{ taker: number | undefined }>('taker').taker),
    holders: () => (script.calls.push('holders'), answer<{ holders: number[] }>('holders').holders),
    probe: () => sighting('probe'),
    acquire: () => {
      const s = sighting('acquire')
      return s.held ? { held: true, record: s.record } : 'HANDLE'
    },
    terminate: (_loc: unknown, pid: number, signal: string) => {
      script.calls.push(`terminate ${pid} ${signal}`)
      const o = script.seen[0] as { reached?: number[]; used?: true }
      if (o?.reached === undefined) throw new Error(`terminate answered with ${JSON.stringify(o)}`)
      o.used = true
      return o.reached.includes(pid)
    },
    wait: (_loc: unknown, _record: unknown, ms: number) => {
      const s = sighting(`wait ${ms}`)
      if (!s.held) return Promise.resolve({ handle: 'HANDLE', at: script.clock })
      script.clock += ms
      return Promise.resolve({ held: true, record: s.record })
    },
    release: () => script.calls.push('release'),
  }
  return { backend }
})

describe('endHolder carries the steps out, one backend call each', () => {
  afterEach(() => {
    vi.restoreAllMocks()
  })
  const loc: Location = { name: 'web', key: undefined, scope: 'user', path: '/nonexistent/web.lock', id: 'user:/nonexistent/web.lock' }
  // `ours` is the registry's word, which these runs leave as it is: nothing held.
  const runs = Object.values(cases)
    .flat()
    .filter((c) => !c.seen.some((o) => 'ours' in o && o.ours))
  for (const take of [undefined, { data: undefined }]) {
    describe(take === undefined ? 'stop' : 'replace', () => {
      it.each(runs)('$name', async (c) => {
        script.seen = c.seen.map((o) => ({ ...o }))
        script.calls = []
        script.clock = 0
        vi.spyOn(Date, 'now').mockImplementation(() => script.clock)
        const e = await endHolder(loc, { signal: 'SIGTERM', timeout: 500, force: false, ...c.plan, ...(take === undefined ? {} : { take }) })

        const calls = c.steps.flatMap((step) => {
          const [what, ...rest] = step.split(' ')
          if (what === 'look') return [take === undefined ? 'probe' : 'acquire']
          if (what === 'read') return ['probe']
          if (what!.startsWith('SIG')) return rest.map((pid) => `terminate ${pid} ${what}`)
          return [step]
        })
        // A stop lets go at once of a lock its wait took; a replace keeps it.
        const tookIt = c.outcome.state === 'free' && calls.at(-1) !== 'probe'
        if (tookIt && take === undefined) calls.push('release')
        expect(script.calls).toEqual(calls)
        expect(script.seen.filter((o) => !(o as { used?: true }).used)).toEqual([])
        expect(e).toEqual(tookIt && take !== undefined ? { ...c.outcome, handle: 'HANDLE', acquiredAt: new Date(script.clock) } : c.outcome)
      })
    })
  }
})
