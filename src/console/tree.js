// The lineage as an outline: workers by parent, collapsible subtrees, search by id prefix, and a
// virtual list that puts only the rows in view into the DOM (10,000 workers stay 40-odd nodes).

const ROW_HEIGHT = 30
const OVERSCAN = 8
const MAX_MATCHES = 2000

export function createTreeModel() {
  const workers = new Map()
  const children = new Map() // parent id (or '' for roots) -> ordered ids
  const collapsed = new Set()

  const link = (w) => {
    const key = w.parent_id ?? ''
    let list = children.get(key)
    if (!list) children.set(key, (list = []))
    list.push(w.worker_id)
  }

  return {
    workers,
    collapsed,
    reset(items) {
      workers.clear()
      children.clear()
      for (const w of items) workers.set(w.worker_id, w)
      // A child listed before its parent still lands under it: link after all are known.
      for (const w of items) link(w)
    },
    /** Adds or updates a worker; true when it is new. */
    upsert(w) {
      const known = workers.get(w.worker_id)
      workers.set(w.worker_id, known ? { ...known, ...w } : w)
      if (!known) link(w)
      return !known
    },
    childrenOf: (id) => children.get(id) ?? [],
    /** The rows to show, in outline order, each {id, level}. */
    rows(prefix) {
      const out = []
      if (prefix) {
        // Matches plus their ancestors, so each match is seen in its lineage.
        const keep = new Set()
        let matches = 0
        for (const id of workers.keys()) {
          if (!id.startsWith(prefix)) continue
          if (++matches > MAX_MATCHES) break
          for (let cur = id; cur && !keep.has(cur); cur = workers.get(cur)?.parent_id) keep.add(cur)
        }
        const walk = (key, level) => {
          for (const id of children.get(key) ?? []) {
            if (!keep.has(id)) continue
            out.push({ id, level, match: id.startsWith(prefix) })
            walk(id, level + 1)
          }
        }
        walk('', 1)
        // Orphans (parent not loaded) that match.
        return { rows: out, matches: Math.min(matches, MAX_MATCHES), capped: matches > MAX_MATCHES }
      }
      const stack = [...(children.get('') ?? [])].reverse().map((id) => ({ id, level: 1 }))
      // Workers whose parent is unknown to this page still show, as roots.
      for (const [parent, ids] of children) {
        if (parent !== '' && !workers.has(parent)) for (const id of ids) stack.unshift({ id, level: 1 })
      }
      while (stack.length > 0) {
        const row = stack.pop()
        out.push(row)
        if (collapsed.has(row.id)) continue
        const kids = children.get(row.id)
        if (kids) for (let i = kids.length - 1; i >= 0; i--) stack.push({ id: kids[i], level: row.level + 1 })
      }
      return { rows: out, matches: null, capped: false }
    },
  }
}

/** Renders `rows` into `container` (a role=tree element with a spacer child), only those in view. */
export function createTreeView(container, spacer, { model, describe, onSelect, onToggle }) {
  let rows = []
  let selected = null
  const pool = []

  const render = () => {
    spacer.style.height = `${rows.length * ROW_HEIGHT}px`
    const first = Math.max(0, Math.floor(container.scrollTop / ROW_HEIGHT) - OVERSCAN)
    const count = Math.ceil(container.clientHeight / ROW_HEIGHT) + OVERSCAN * 2
    const visible = rows.slice(first, first + count)
    while (pool.length < visible.length) {
      const el = document.createElement('div')
      el.setAttribute('role', 'treeitem')
      el.className = 'row'
      container.appendChild(el)
      pool.push(el)
    }
    pool.forEach((el, i) => {
      const row = visible[i]
      if (!row) {
        el.hidden = true
        return
      }
      el.hidden = false
      fill(el, row, first + i)
    })
  }

  const fill = (el, row, index) => {
    const w = model.workers.get(row.id)
    const kids = model.childrenOf(row.id).length
    el.style.transform = `translateY(${index * ROW_HEIGHT}px)`
    el.dataset.id = row.id
    el.setAttribute('aria-level', String(row.level))
    el.setAttribute('aria-selected', String(row.id === selected))
    if (kids > 0) el.setAttribute('aria-expanded', String(!model.collapsed.has(row.id)))
    else el.removeAttribute('aria-expanded')
    el.className = `row status-${w?.status ?? 'unknown'}${row.id === selected ? ' selected' : ''}${row.match ? ' match' : ''}`
    el.replaceChildren()
    const indent = document.createElement('span')
    indent.className = 'indent'
    indent.style.width = `${(row.level - 1) * 16}px`
    el.append(indent)
    if (kids > 0) {
      const toggle = document.createElement('button')
      toggle.type = 'button'
      toggle.className = 'toggle'
      const open = !model.collapsed.has(row.id)
      toggle.textContent = open ? '▾' : '▸'
      toggle.setAttribute('aria-label', `${open ? 'Collapse' : 'Expand'} ${row.id} (${kids} children)`)
      toggle.addEventListener('click', (event) => {
        event.stopPropagation()
        onToggle(row.id)
      })
      el.append(toggle)
    } else {
      const gap = document.createElement('span')
      gap.className = 'toggle-gap'
      el.append(gap)
    }
    const parts = describe(w, row.id, kids)
    for (const part of parts) el.append(part)
    // The row's name is its text, without the toggle's label: it starts with the worker id.
    el.setAttribute('aria-label', parts.map((p) => p.textContent).join(', '))
  }

  container.addEventListener('scroll', () => requestAnimationFrame(render), { passive: true })
  container.addEventListener('click', (event) => {
    const el = event.target.closest('.row')
    if (el) onSelect(el.dataset.id)
  })
  container.addEventListener('keydown', (event) => {
    if (!['ArrowDown', 'ArrowUp'].includes(event.key) || rows.length === 0) return
    event.preventDefault()
    const at = rows.findIndex((r) => r.id === selected)
    const next = rows[Math.max(0, Math.min(rows.length - 1, at + (event.key === 'ArrowDown' ? 1 : -1)))]
    onSelect(next.id)
    const top = rows.indexOf(next) * ROW_HEIGHT
    if (top < container.scrollTop || top > container.scrollTop + container.clientHeight - ROW_HEIGHT) container.scrollTop = top - 2 * ROW_HEIGHT
  })
  window.addEventListener('resize', () => render())

  return {
    setRows(next) {
      rows = next
      render()
    },
    select(id) {
      selected = id
      render()
    },
    scrollTo(id) {
      const index = rows.findIndex((r) => r.id === id)
      if (index >= 0) container.scrollTop = Math.max(0, index * ROW_HEIGHT - container.clientHeight / 2)
      render()
    },
    get rowCount() {
      return rows.length
    },
    /** The ids of the rows now in the DOM. */
    visibleIds() {
      return pool.filter((el) => !el.hidden).map((el) => el.dataset.id)
    },
  }
}
