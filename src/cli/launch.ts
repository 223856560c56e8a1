// Starting another entry point of this package as a node process, the way this one runs: the
// TypeScript source through tsx on a checkout, the compiled JavaScript from dist/ otherwise.
import { createRequire } from 'node:module'
import { fileURLToPath, pathToFileURL } from 'node:url'

export interface NodeCommand {
  command: string
  args: string[]
}

/** `name` is a module beside this one, without extension, e.g. 'demo-worker'. */
export function nodeCommand(name: string): NodeCommand {
  const fromSource = import.meta.url.endsWith('.ts')
  const file = fileURLToPath(new URL(`./${name}.${fromSource ? 'ts' : 'js'}`, import.meta.url))
  if (!fromSource) return { command: process.execPath, args: [file] }
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href
  return { command: process.execPath, args: ['--import', tsx, file] }
}
