// Calls of every function the addon exports, each with one argument of the
// wrong type or out of range (a negative descriptor, a fraction, a mode or
// check mask no lock file has). Each must throw a TypeError with code
// ERR_INVALID_ARG_TYPE before it touches anything: never read the argument
// as 0 (descriptor 0 is stdin) and go on, never crash. Used in-process by
// the conformance scenarios (every backend, Wine too) and one call per
// process by test/addon-boundary.test.ts.
//
// Harmless if a check were missing: no call names a real lock, handle or
// process, and the files they could create are relative to the caller's
// working directory.

/**
 * [function name, arguments] for the addon `addon` (its platform's set).
 * @returns {Array<[string, unknown[]]>}
 */
export function wrongCalls(addon) {
  const fn = () => {}
  const common = [['sha256', [5]]]
  if (addon.platform === 'win32') {
    return [
      ...common,
      ['acquire', [5, false]],
      ['acquire', ['n', 'no']],
      ['release', ['1']],
      ['release', [-1]],
      ['release', [1.5]],
      ['probe', [5]],
      ['waitStart', [5, false, fn]],
      ['waitStart', ['n', 0, fn]],
      ['waitStart', ['n', false, 'callback']],
      ['waitStop', ['1']],
      ['waitStop', [-1]],
      ['knownFolder', [5]],
      ['processStartTime', ['1']],
      ['processStartTime', [-1]],
      ['terminate', ['1', '0']],
      ['terminate', [1, 0]],
      ['makeSharedDir', [5]],
      ['pipeListen', [5, false, 1000, fn]],
      ['pipeListen', ['n', 0, 1000, fn]],
      ['pipeListen', ['n', false, 0, fn]],
      ['pipeListen', ['n', false, 1000, 'callback']],
      ['pipeReply', ['1', 1, Buffer.alloc(0)]],
      ['pipeReply', [1, -1, Buffer.alloc(0)]],
      ['pipeReply', [1, 1, 'frame']],
      ['pipeClose', ['1']],
      ['pipeServerPid', [5]],
    ]
  }
  const at = addon.AT_FDCWD
  return [
    ...common,
    ['open', ['.', 'f', 0o644, 0]],
    ['open', [1.5, 'f', 0o644, 0]],
    ['open', [-5, 'f', 0o644, 0]],
    ['open', [at, 5, 0o644, 0]],
    ['open', [at, 'f', '644', 0]],
    ['open', [at, 'f', -1, 0]],
    ['open', [at, 'f', 0o10644, 0]],
    ['open', [at, 'f', 0o644, 'all']],
    ['open', [at, 'f', 0o644, 8]],
    ['lock', ['0', at, 'f', true, 0o644, 0, null]],
    ['lock', [-1, at, 'f', true, 0o644, 0, null]],
    ['lock', [0, 'cwd', 'f', true, 0o644, 0, null]],
    ['lock', [0, at, null, true, 0o644, 0, null]],
    ['lock', [0, at, 'f', 1, 0o644, 0, null]],
    ['lock', [0, at, 'f', true, 0o644, 0, 5]],
    ['acquire', [at, 'f', 0o644, 0, 5, false, -1, false]],
    ['acquire', [at, 'f', 0o644, 0, null, 'keep', -1, false]],
    ['acquire', [at, 'f', 0o644, 0, null, false, '3', false]],
    ['acquire', [at, 'f', 0o644, 0, null, false, -2, false]],
    ['acquire', [at, 'f', 0o644, 0, null, false, -1, undefined]],
    ['acquire', [at, 'f', 0o644, -1, null, false, -1, false]],
    ['probe', [5]],
    ['readRecord', ['0']],
    ['readRecord', [-1]],
    ['writeRecord', ['0', '{}']],
    ['writeRecord', [-1, '{}']],
    ['writeRecord', [0, 5]],
    ['flock', ['0', true, true]],
    ['flock', [-1, true, true]],
    ['flock', [0, 'yes', true]],
    ['flock', [0, true, 1]],
    ['close', ['0']],
    ['close', [-1]],
    ['release', ['0']],
    ['release', [0.5]],
    ['unlock', ['0']],
    ['unlock', [-1]],
    ['openDir', [5]],
    ['fsType', [5]],
    ['sameFile', ['0', at, 'f']],
    ['sameFile', [0, 'cwd', 'f']],
    ['sameFile', [0, at, 5]],
    ['peerCred', ['0']],
    ['peerCred', [-1]],
    ['peerCred', [1.5]],
    ['waitInit', ['callback']],
    ['waitStart', ['0', at, 'f', true, 0o644, 0, null]],
    ['waitStart', [0, at, 'f', 'yes', 0o644, 0, null]],
    ['waitStart', [0, at, 'f', true, 0o644, 16, null]],
    ['waitStart', [0, at, 'f', true, 0o644, 0, 5]],
    ['waitCancel', ['1']],
    ['waitCancel', [-1]],
    ['pidfdOpen', ['1']],
    ['pidfdOpen', [-1]],
    ['pidfdSignal', ['3', 0]],
    ['pidfdSignal', [-1, 0]],
    ['pidfdSignal', [3, 'SIGTERM']],
  ].filter(([name]) => typeof addon[name] === 'function')
}

/** The functions of `addon` that take arguments: each must be in wrongCalls. */
export function functionsWithArguments(addon) {
  return Object.keys(addon).filter((k) => typeof addon[k] === 'function' && !['hostname', 'userSid'].includes(k))
}

/** The outcome of one call: 'ok' (TypeError, ERR_INVALID_ARG_TYPE), or what happened instead. */
export function outcome(addon, name, args) {
  let result
  try {
    result = addon[name](...args)
  } catch (err) {
    if (err instanceof TypeError && err.code === 'ERR_INVALID_ARG_TYPE') return 'ok'
    return `threw ${err?.constructor?.name} ${err?.code ?? ''}: ${err?.message}`
  }
  return `returned ${String(result)}`
}
