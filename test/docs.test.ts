// The documentation is read before the code and copied from: its TypeScript
// (and the examples/ programs) must compile under --strict as a user would
// paste it, its links must lead somewhere, and the README must stay short
// enough to be read.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const ROOT = path.resolve(__dirname, '..')
const README_LIMIT = 10 * 1024
const DOCS = [
  'README.md',
  ...fs
    .readdirSync(path.join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => `docs/${f}`),
]
// What the package exports as values: an @example that calls one of these
// gets the import a user would write.
const EXPORTS = Object.keys(createRequire(__filename)(ROOT) as Record<string, unknown>)
const POSTGRES_EXPORTS = Object.keys(createRequire(__filename)(path.join(ROOT, 'postgres')) as Record<string, unknown>)
const EXAMPLES = fs
  .readdirSync(path.join(ROOT, 'examples'))
  .filter((f) => /\.[cm]?js$/.test(f))
  .sort()
// The reader's own work, which the examples call without defining it.
const PLACEHOLDERS = `declare function migrate(): Promise<void>
declare function backup(): Promise<void>
declare function buildReport(): Promise<void>
declare const server: import('node:http').Server
`

interface Snippet {
  /** Where it comes from, as file:line. */
  origin: string
  code: string
}

interface Fence {
  line: number
  info: string
  code: string
}

/** The fenced code blocks of a markdown text. */
function fences(text: string): Fence[] {
  const out: Fence[] = []
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const open = /^ {0,3}(?<marker>`{3,}|~{3,})(?<info>.*)$/.exec(lines[i]!)?.groups
    if (open === undefined) continue
    const { marker = '', info = '' } = open
    const body: string[] = []
    let j = i + 1
    for (; j < lines.length; j++) {
      const line = lines[j]!
      const close = /^ {0,3}(`{3,}|~{3,})\s*$/.exec(line)?.[1]
      if (close !== undefined && close[0] === marker[0] && close.length >= marker.length) break
      body.push(line)
    }
    out.push({ line: i + 1, info: info.trim(), code: body.join('\n') })
    i = j
  }
  return out
}

/** The markdown without its fenced blocks and inline code, line numbers kept. */
function prose(text: string): string {
  const lines = text.split('\n')
  for (const f of fences(text)) {
    const n = f.code === '' ? 0 : f.code.split('\n').length
    for (let k = f.line - 1; k <= f.line + n && k < lines.length; k++) lines[k] = ''
  }
  return lines
    .filter((l) => !/^( {4}|\t)/.test(l)) // indented code
    .join('\n')
    .replace(/`[^`\n]*`/g, (m) => m.replace(/[[\]()]/g, ' '))
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  const text = heading.replace(/\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/[`*]/g, '')
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-')
}

function anchors(file: string): Set<string> {
  const seen = new Map<string, number>()
  const out = new Set<string>()
  const text = fs.readFileSync(path.join(ROOT, file), 'utf8')
  const codeLines = new Set<number>()
  for (const f of fences(text)) {
    const n = f.code === '' ? 0 : f.code.split('\n').length
    for (let k = f.line; k <= f.line + n + 1; k++) codeLines.add(k)
  }
  text.split('\n').forEach((line, i) => {
    const h = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)?.[1]
    if (h === undefined || codeLines.has(i + 1)) return
    const base = slug(h)
    const count = seen.get(base) ?? 0
    seen.set(base, count + 1)
    out.add(count === 0 ? base : `${base}-${count}`)
  })
  return out
}

/** Every ```ts block of the documentation, except those marked `skip-check`. */
function markdownSnippets(): Snippet[] {
  const out: Snippet[] = []
  for (const file of DOCS) {
    for (const f of fences(fs.readFileSync(path.join(ROOT, file), 'utf8'))) {
      const [lang, ...flags] = f.info.split(/\s+/)
      if (lang !== 'ts' && lang !== 'typescript') continue
      if (flags.includes('skip-check')) continue
      out.push({ origin: `${file}:${f.line + 1}`, code: f.code })
    }
  }
  return out
}

/** The @example of every JSDoc comment in src/, with the imports it needs. */
function jsdocSnippets(): Snippet[] {
  const out: Snippet[] = []
  for (const name of (fs.readdirSync(path.join(ROOT, 'src'), { recursive: true }) as string[]).filter((f) => f.endsWith('.ts')).sort()) {
    const text = fs.readFileSync(path.join(ROOT, 'src', name), 'utf8')
    for (const m of text.matchAll(/\/\*\*[\s\S]*?\*\//g)) {
      const lines = m[0].split('\n').map((l) => l.replace(/^\s*\/?\*+\/?\s?/, '').replace(/\s*\*\/$/, ''))
      const at = lines.findIndex((l) => l.startsWith('@example'))
      if (at < 0) continue
      const body: string[] = []
      for (const l of lines.slice(at + 1)) {
        if (l.startsWith('@')) break
        body.push(l)
      }
      const code = body.join('\n').trim()
      // The PostgreSQL backend's examples use its entry point.
      const [entry, names] = name.startsWith(path.join('backends', 'postgres')) ? ['instance-lock/postgres', POSTGRES_EXPORTS] : ['instance-lock', EXPORTS]
      const used = names.filter((e) => new RegExp(`(?<![.\\w])${e}\\s*\\(|instanceof\\s+${e}\\b|new\\s+${e}\\b`).test(code))
      const line = text.slice(0, m.index).split('\n').length + at
      const imports = used.length === 0 ? '' : `import { ${used.join(', ')} } from '${entry}'\n`
      out.push({ origin: `src/${name}:${line + 1}`, code: imports + code })
    }
  }
  return out
}

let work: string
let snippets: Snippet[]

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'il-docs-'))
  // The package as a user's project sees it: by name, through its types.
  fs.mkdirSync(path.join(work, 'node_modules'))
  fs.symlinkSync(ROOT, path.join(work, 'node_modules', 'instance-lock'), 'junction')
  fs.writeFileSync(path.join(work, 'package.json'), JSON.stringify({ name: 'docs-check', private: true, type: 'module' }))
  fs.writeFileSync(path.join(work, 'placeholders.d.ts'), PLACEHOLDERS)
  snippets = [...markdownSnippets(), ...jsdocSnippets()]
  snippets.forEach((s, i) => fs.writeFileSync(path.join(work, `snippet-${i}.mts`), `${s.code}\n`))
  fs.mkdirSync(path.join(work, 'examples'))
  for (const f of EXAMPLES) fs.copyFileSync(path.join(ROOT, 'examples', f), path.join(work, 'examples', f))
  fs.writeFileSync(
    path.join(work, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        module: 'node16',
        moduleResolution: 'node16',
        target: 'ES2022',
        lib: ['ES2022', 'ESNext.Disposable'],
        strict: true,
        allowJs: true,
        checkJs: true,
        noEmit: true,
        skipLibCheck: true,
        types: ['node'],
        typeRoots: [path.join(ROOT, 'node_modules', '@types')],
      },
      files: ['placeholders.d.ts', ...snippets.map((_, i) => `snippet-${i}.mts`), ...EXAMPLES.map((f) => `examples/${f}`)],
    }),
  )
})

afterAll(() => {
  if (work !== undefined) fs.rmSync(work, { recursive: true, force: true })
})

describe('documentation', () => {
  it('keeps README.md within 10 KB', () => {
    expect(fs.statSync(path.join(ROOT, 'README.md')).size).toBeLessThanOrEqual(README_LIMIT)
  })

  it('shows contributors the commands CI runs', () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8')
    expect(readme).toContain('npm install')
    expect(readme).toContain('npm test')
  })

  it('compiles every TypeScript example, and the programs in examples/, under tsc --strict', () => {
    expect(snippets.filter((s) => s.origin.startsWith('README.md')).length).toBeGreaterThanOrEqual(3)
    expect(snippets.filter((s) => s.origin.startsWith('src/')).length).toBeGreaterThanOrEqual(5)
    let output = ''
    try {
      execFileSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', work, '--pretty', 'false'], { cwd: work, encoding: 'utf8', stdio: 'pipe' })
    } catch (err) {
      output = (err as { stdout: string }).stdout
    }
    // Name each error after the documentation line it comes from.
    const errors = output
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) =>
        l.replace(/^snippet-(\d+)\.mts\((\d+),(\d+)\)/, (_, i: string, line: string, col: string) => {
          const s = snippets[Number(i)]
          if (s === undefined) return l
          const [file, first] = s.origin.split(':')
          const offset = s.origin.startsWith('src/') && s.code.startsWith('import ') ? 1 : 0
          return `${file}:${Number(first) + Number(line) - 1 - offset}:${col} (${s.origin})`
        }),
      )
    expect(errors).toEqual([])
  })

  it.each(DOCS)('%s: every relative link leads to a file and heading that exist', (file) => {
    const text = prose(fs.readFileSync(path.join(ROOT, file), 'utf8'))
    const broken: string[] = []
    for (const m of text.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
      const target = m[1]!
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue // https:, mailto:
      const [rel = '', anchor] = target.split('#')
      const dest = rel === '' ? file : path.posix.normalize(path.posix.join(path.posix.dirname(file), rel))
      if (dest.startsWith('..') || !fs.existsSync(path.join(ROOT, dest))) {
        broken.push(`${target}: no such file`)
        continue
      }
      if (anchor !== undefined && dest.endsWith('.md') && !anchors(dest).has(anchor)) broken.push(`${target}: no such heading in ${dest}`)
    }
    expect(broken).toEqual([])
  })
})
