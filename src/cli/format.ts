// Human output: colours (terminals only), aligned tables, lineage trees, ages.
import type { WorkerStatus } from '../schemas/index.js'

export interface Style {
  enabled: boolean
  bold(text: string): string
  dim(text: string): string
  red(text: string): string
  green(text: string): string
  yellow(text: string): string
  cyan(text: string): string
  status(status: WorkerStatus | string): string
}

export function createStyle(enabled: boolean): Style {
  const wrap = (open: number, close: number) => (text: string) => (enabled ? `\x1b[${open}m${text}\x1b[${close}m` : text)
  const style: Style = {
    enabled,
    bold: wrap(1, 22),
    dim: wrap(2, 22),
    red: wrap(31, 39),
    green: wrap(32, 39),
    yellow: wrap(33, 39),
    cyan: wrap(36, 39),
    status: (status) =>
      status === 'active' ? style.green(status) : status === 'quarantined' ? style.yellow(status) : style.red(status),
  }
  return style
}

// eslint-disable-next-line no-control-regex -- matching terminal colour codes is the point
const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g
export const visibleLength = (text: string): number => text.replace(ANSI, '').length
/** Cuts `text` to `width` visible characters, keeping colour codes intact. */
export function truncate(text: string, width: number): string {
  if (visibleLength(text) <= width) return text
  let visible = 0
  let out = ''
  for (let i = 0; i < text.length; ) {
    // eslint-disable-next-line no-control-regex -- as above
    const escape = /^\x1b\[[0-9;]*[A-Za-z]/.exec(text.slice(i))
    if (escape) {
      out += escape[0]
      i += escape[0].length
      continue
    }
    if (visible < width - 1) out += text[i]
    else if (visible === width - 1) out += '…'
    visible += 1
    i += 1
  }
  return out + '\x1b[0m'
}

export const pad = (text: string, width: number): string => text + ' '.repeat(Math.max(0, width - visibleLength(text)))

/** Rows under a header, columns padded to their widest cell. */
export function table(header: string[], rows: string[][], style: Style): string[] {
  const widths = header.map((title, column) => Math.max(visibleLength(title), ...rows.map((row) => visibleLength(row[column] ?? ''))))
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : pad(cell, widths[column]!)))
      .join('  ')
      .trimEnd()
  return [style.bold(line(header)), ...rows.map(line)]
}

export interface TreeNode {
  id: string
  parent_id: string | null
}

/**
 * Indented lineage: roots first (a node whose parent is not in `nodes` counts as a root), children
 * in the order given, with box-drawing branches.
 */
export function tree<T extends TreeNode>(nodes: readonly T[], label: (node: T) => string): string[] {
  const known = new Set(nodes.map((node) => node.id))
  const children = new Map<string, T[]>()
  const roots: T[] = []
  for (const node of nodes) {
    if (node.parent_id !== null && known.has(node.parent_id)) {
      const siblings = children.get(node.parent_id) ?? []
      siblings.push(node)
      children.set(node.parent_id, siblings)
    } else {
      roots.push(node)
    }
  }
  const lines: string[] = []
  const walk = (node: T, prefix: string, branch: string) => {
    lines.push(prefix + branch + label(node))
    const below = children.get(node.id) ?? []
    const childPrefix = prefix + (branch === '' ? '' : branch === '├─ ' ? '│  ' : '   ')
    below.forEach((child, index) => walk(child, childPrefix, index === below.length - 1 ? '└─ ' : '├─ '))
  }
  for (const root of roots) walk(root, '', '')
  return lines
}

/** "4s ago", "3m ago", "2h ago", "5d ago"; '-' for null. */
export function ago(iso: string | null, now = Date.now()): string {
  if (iso === null) return '-'
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000))
  if (seconds < 60) return `${seconds}s ago`
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h ago`
  return `${Math.floor(seconds / 86_400)}d ago`
}

export const shortId = (id: string): string => id.slice(0, 8)
