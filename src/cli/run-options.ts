/**
 * The options of `instance-lock run` beside COMMAND, as node:util's parseArgs
 * takes them: the same for a local lock and for `--postgres`.
 */
export const RUN_OPTIONS = {
  wait: { type: 'string' },
  replace: { type: 'boolean' },
  timeout: { type: 'string' },
  'conflict-exit-code': { type: 'string' },
  'no-inherit': { type: 'boolean' },
  data: { type: 'string' },
  ready: { type: 'boolean' },
  quiet: { type: 'boolean' },
} as const
