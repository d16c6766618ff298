// The conformance scenarios (test/conformance/scenarios.mjs), which every
// backend runs, on the PostgreSQL backend: against each test server, this
// process and the scenarios' children each with postgres() objects of their
// own (test/conformance/backend.cjs).
import { describe, it } from 'vitest'
import { expectAllPassed, runScenarios } from '../conformance/run.js'
import { servers } from './helpers.js'

const LEG_TIMEOUT = 240_000

describe.each(servers)('conformance on PostgreSQL ($name server)', (server) => {
  it(
    'passes every scenario',
    async () => {
      const r = await runScenarios({ IL_BACKEND: 'postgres', IL_POSTGRES_URL: server.url })
      expectAllPassed(r, /^# backend: PostgreSQL, proves holders: yes, blocking waits: yes$/m)
    },
    LEG_TIMEOUT,
  )
})
