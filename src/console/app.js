// The operations console: sign-in, then summary, lineage, worker panel, denials, audit and
// contract, all kept current from GET /v1/events without reloading.
import { ApiError, createApi } from './api.js'
import { createTreeModel, createTreeView } from './tree.js'

const TOKEN_KEY = 'warden.operator-token'
const TERMINAL = new Set(['deregistered', 'killed', 'reaped', 'expired', 'exited'])
const DENIALS = new Set(['manifest_denied', 'spawn_denied', 'registration_rejected', 'registrations_rejected'])
const DENIAL_WINDOW_MS = 5 * 60_000
const FEED_SIZE = 100
const ID = /^[0-9a-f]{32}$/

const $ = (id) => document.getElementById(id)
const el = (tag, props = {}, ...children) => {
  const node = document.createElement(tag)
  for (const [key, value] of Object.entries(props)) {
    if (key === 'class') node.className = value
    else if (key.startsWith('aria-') || key === 'role' || key === 'for') node.setAttribute(key, value)
    else node[key] = value
  }
  node.append(...children.filter((c) => c !== null && c !== undefined))
  return node
}
const time = (iso) => (iso ? iso.slice(11, 19) : '')
const mb = (bytes) => `${(bytes / 1048576).toFixed(1)} MB`

// --- sign-in ----------------------------------------------------------------------------------

async function boot() {
  const saved = sessionStorage.getItem(TOKEN_KEY)
  if (saved) {
    try {
      await start(saved)
      return
    } catch {
      sessionStorage.removeItem(TOKEN_KEY)
    }
  }
  showSignIn()
}

function showSignIn(message = '') {
  $('console-view').hidden = true
  $('killswitch-banner').hidden = true
  $('signin-view').hidden = false
  $('signin-error').textContent = message
  $('token').focus()
}

$('signin-form').addEventListener('submit', async (event) => {
  event.preventDefault()
  const token = $('token').value.trim()
  $('signin-error').textContent = ''
  try {
    await start(token)
    sessionStorage.setItem(TOKEN_KEY, token)
    $('token').value = ''
  } catch (error) {
    $('signin-error').textContent =
      error instanceof ApiError && error.status === 401
        ? 'Warden refused this token (401 unauthorized). Paste the operator token exactly as the server wrote it.'
        : `Cannot reach Warden: ${error.message}`
  }
})

$('signout').addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY)
  location.reload()
})

// --- the console ------------------------------------------------------------------------------

let api
let stopFollowing = () => {}
const model = createTreeModel()
const state = {
  summary: null,
  selected: null,
  selectedView: null,
  feed: [],
  denials: [],
  contract: null,
  pending: new Set(),
  reloadAll: false,
  flushTimer: null,
}

const view = createTreeView($('tree'), $('tree-spacer'), {
  model,
  describe: describeRow,
  onSelect: (id) => select(id),
  onToggle: (id) => {
    if (model.collapsed.has(id)) model.collapsed.delete(id)
    else model.collapsed.add(id)
    renderTree()
  },
})

async function start(token) {
  api = createApi(token)
  const summary = await api.get('/v1/summary') // throws 401 for a wrong token: nothing shown
  $('signin-view').hidden = true
  $('console-view').hidden = false
  state.summary = summary
  renderSummary()
  const started = performance.now()
  await reloadWorkers(true)
  const tail = await api.get(`/v1/audit?after_seq=${Math.max(0, summary.audit_head_seq - 300)}&limit=300`)
  for (const record of tail.items) noteRecord(record)
  renderFeed()
  renderDenials()
  void verifyChain()
  await loadContract()
  document.body.dataset.loadMs = String(Math.round(performance.now() - started))
  stopFollowing()
  stopFollowing = api.follow(summary.audit_head_seq, { onRecord, onState })
}

function onState(s) {
  const label = { live: 'live', reconnecting: 'reconnecting…', unauthorized: 'signed out: token refused' }[s] ?? s
  $('live-status').textContent = label
  $('live-status').className = `live ${s}`
  if (s === 'unauthorized') showSignIn('Warden no longer accepts this token. Sign in again.')
}

async function reloadWorkers(initial = false) {
  let fresh = true
  let big = false
  // Shown page by page: the first thousand rows appear while the rest load.
  const { count, truncated } = await api.allWorkers((items) => {
    if (fresh) model.reset([])
    fresh = false
    // A big fleet opens folded below the roots' children: expand what you look at.
    if (initial && items.length === 1000) big = true
    for (const w of items) {
      model.upsert(w)
      if (big && w.depth >= 1) model.collapsed.add(w.worker_id)
    }
    renderTree()
  })
  if (fresh) model.reset([])
  renderTree()
  if (truncated) $('tree-note').textContent = `Showing the first ${count} workers.`
}

function renderTree() {
  const prefix = $('search').value.trim().toLowerCase()
  const { rows, matches, capped } = model.rows(prefix)
  view.setRows(rows)
  const total = model.workers.size
  $('tree-note').textContent = prefix
    ? `${matches}${capped ? '+' : ''} worker${matches === 1 ? '' : 's'} match “${prefix}”`
    : `${total} worker${total === 1 ? '' : 's'}, ${rows.length} row${rows.length === 1 ? '' : 's'} shown`
}

$('search').addEventListener('input', () => renderTree())
$('expand-all').addEventListener('click', () => {
  model.collapsed.clear()
  renderTree()
})
$('collapse-all').addEventListener('click', () => {
  for (const id of model.workers.keys()) if (model.childrenOf(id).length > 0) model.collapsed.add(id)
  renderTree()
})

function describeRow(w, id) {
  const parts = [el('span', { class: 'wid' }, id)]
  if (!w) return parts
  parts.push(el('span', { class: `badge status-${w.status}` }, w.status))
  parts.push(el('span', { class: 'meta' }, `depth ${w.depth}`))
  if (w.managed === true) parts.push(el('span', { class: 'tag' }, 'managed'))
  else if (w.managed === false) parts.push(el('span', { class: 'tag external' }, 'external'))
  const usage = w.sandbox?.usage
  if (usage) parts.push(el('span', { class: 'meta' }, `cpu ${usage.cpu_seconds.toFixed(1)} s · ${mb(usage.memory_bytes)} · ${usage.pids} pids`))
  if (w.reason) parts.push(el('span', { class: 'reason' }, w.reason))
  return parts
}

// --- live updates -----------------------------------------------------------------------------

function onRecord(record) {
  noteRecord(record)
  for (const id of idsIn(record)) state.pending.add(id)
  if (record.type === 'kill_switch_engaged' || state.pending.size > 300) state.reloadAll = true
  if (record.type === 'contract_updated') void loadContract(true)
  if (state.flushTimer === null) state.flushTimer = setTimeout(flush, 100)
  renderFeed()
  if (DENIALS.has(record.type)) renderDenials()
  // The chain grew: verify it again once things settle (the whole log is read, so not per record).
  clearTimeout(state.verifyTimer)
  state.verifyTimer = setTimeout(() => void verifyChain(), 3000)
}

/** The workers a record is about: its worker_id and any id lists in its data (a cascade, the kill switch). */
function idsIn(record) {
  const ids = []
  if (record.worker_id && ID.test(record.worker_id)) ids.push(record.worker_id)
  for (const value of Object.values(record.data ?? {})) {
    if (Array.isArray(value)) for (const item of value) if (typeof item === 'string' && ID.test(item)) ids.push(item)
  }
  return ids
}

function noteRecord(record) {
  state.feed.unshift(record)
  if (state.feed.length > FEED_SIZE) state.feed.length = FEED_SIZE
  if (DENIALS.has(record.type)) state.denials.push({ at: Date.parse(record.at), code: record.code ?? record.type, type: record.type })
}

async function flush() {
  state.flushTimer = null
  const ids = [...state.pending]
  const all = state.reloadAll
  state.pending.clear()
  state.reloadAll = false
  try {
    if (all) await reloadWorkers()
    else {
      for (let i = 0; i < ids.length; i += 8) {
        const views = await Promise.all(ids.slice(i, i + 8).map((id) => api.get(`/v1/workers/${id}`).catch(() => null)))
        for (const w of views) if (w) model.upsert(w)
      }
      renderTree()
    }
    if (state.selected && (all || ids.includes(state.selected))) await showWorker(state.selected)
    state.summary = await api.get('/v1/summary')
    renderSummary()
  } catch (error) {
    $('live-status').textContent = `update failed: ${error.message}`
  }
}

// --- summary and kill switch ------------------------------------------------------------------

function renderSummary() {
  const s = state.summary
  const counts = $('counts')
  counts.replaceChildren(
    ...Object.entries(s.workers).map(([status, n]) => el('li', { class: `count status-${status}` }, el('span', { class: 'n' }, String(n)), ` ${status}`)),
  )
  const live = s.slots_in_use - s.outstanding_manifests // the server's one definition of live
  const meter = el('meter', { min: 0, max: s.max_replicas, value: s.slots_in_use, 'aria-label': 'Quota in use' })
  $('quota').replaceChildren(
    el('span', { class: 'n' }, `${s.slots_in_use} of ${s.max_replicas}`),
    ' slots in use ',
    meter,
    el('span', { class: 'note' }, ` ${live} live + ${s.outstanding_manifests} outstanding manifests · contract v${s.contract_version}`),
  )
  const ks = s.kill_switch
  $('killswitch-banner').hidden = !ks.engaged
  document.body.classList.toggle('engaged', ks.engaged)
  $('engage').hidden = ks.engaged
  if (ks.engaged) $('killswitch-banner-text').textContent = `since ${ks.engaged_at?.replace('T', ' ').slice(0, 19)} UTC — ${ks.reason ?? 'no reason given'}. No worker may run, register or spawn.`
}

$('engage').addEventListener('click', () => $('killswitch-dialog').showModal())
$('ks-cancel').addEventListener('click', () => $('killswitch-dialog').close())
$('killswitch-form').addEventListener('submit', async (event) => {
  event.preventDefault()
  const reason = $('ks-reason').value.trim()
  $('killswitch-dialog').close()
  try {
    await api.post('/v1/kill-switch', reason ? { reason } : undefined)
  } catch (error) {
    alertError(error)
  }
  state.summary = await api.get('/v1/summary')
  renderSummary()
})
$('disengage').addEventListener('click', async () => {
  await api.del('/v1/kill-switch').catch(alertError)
  state.summary = await api.get('/v1/summary')
  renderSummary()
})

function alertError(error) {
  $('live-status').textContent = `error: ${error.message}`
}

// --- worker panel -----------------------------------------------------------------------------

async function select(id) {
  state.selected = id
  view.select(id)
  await showWorker(id)
}

async function showWorker(id) {
  let w
  try {
    w = await api.get(`/v1/workers/${id}`)
  } catch (error) {
    $('worker-panel').replaceChildren(el('p', { class: 'error' }, error.message))
    return
  }
  model.upsert(w)
  state.selectedView = w
  const terminal = TERMINAL.has(w.status)
  const fields = [
    ['worker id', w.worker_id],
    ['status', w.status],
    ['reason', w.reason ?? '—'],
    ['parent', w.parent_id ?? '— (root)'],
    ['depth', String(w.depth)],
    ['children', String(w.children_count)],
    ['managed', w.managed === undefined ? '—' : w.managed ? 'yes (sandboxed)' : 'no (external)'],
    ['resources', `${w.resources.cpu_limit} cpu · ${w.resources.memory_limit_mb} MB · external network ${w.resources.network_policy.allow_external ? 'allowed' : 'blocked'}`],
    ['key id', w.key_id],
    ['issued', w.issued_at],
    ['registered', w.registered_at],
    ['last heartbeat', w.last_heartbeat_at ?? '—'],
    ['lease expires', w.lease_expires_at],
    ['lifetime ends', w.expires_at ?? 'never'],
    ['ended', w.ended_at ?? '—'],
  ]
  if (w.sandbox) {
    const u = w.sandbox.usage ?? {}
    fields.push(['sandbox', `${w.sandbox.driver} · ${w.sandbox.state}${w.sandbox.pid ? ` · pid ${w.sandbox.pid}` : ''}${w.sandbox.exit_code != null ? ` · exit ${w.sandbox.exit_code}` : ''}${w.sandbox.signal ? ` · ${w.sandbox.signal}` : ''}`])
    if (u.cpu_seconds !== undefined) fields.push(['usage', `cpu ${u.cpu_seconds.toFixed(2)} s · mem ${mb(u.memory_bytes)} (peak ${mb(u.memory_peak_bytes)}) · ${u.pids} pids · ${u.oom_kills} OOM kills`])
  }
  const dl = el('dl', { class: 'fields' })
  for (const [k, v] of fields) dl.append(el('dt', {}, k), el('dd', {}, v))
  if (w.parent_id) {
    const dd = dl.children[7]
    dd.replaceChildren(el('button', { type: 'button', class: 'link', onclick: () => void select(w.parent_id) }, w.parent_id))
  }
  dl.append(el('dt', {}, 'state snapshot'), el('dd', {}, el('pre', { class: 'snapshot' }, JSON.stringify(w.state_snapshot, null, 1))))

  const reason = el('input', { type: 'text', id: 'q-reason', value: 'operator console', maxLength: 500 })
  const cascade = el('input', { type: 'checkbox', id: 'kill-cascade', checked: true })
  const status = el('p', { class: 'note', role: 'status' })
  const act = (label, run) => async () => {
    status.textContent = `${label}…`
    try {
      await run()
      status.textContent = `${label}: done`
      await showWorker(id)
    } catch (error) {
      status.textContent = `${label} failed: ${error.message}`
    }
  }
  const actions = el(
    'div',
    { class: 'worker-actions', role: 'group', 'aria-label': 'Worker actions' },
    el('label', { for: 'q-reason' }, 'Reason'),
    reason,
    el('button', { type: 'button', disabled: w.status !== 'active', onclick: act('Quarantine', () => api.post(`/v1/workers/${id}/quarantine`, { reason: reason.value.trim() || 'operator console' })) }, 'Quarantine'),
    el('button', { type: 'button', class: 'secondary', disabled: w.status !== 'quarantined', onclick: act('Release', () => api.del(`/v1/workers/${id}/quarantine`)) }, 'Release'),
    el('span', { class: 'kill-group' },
      cascade,
      el('label', { for: 'kill-cascade' }, 'with its live descendants (cascade)'),
      el('button', { type: 'button', class: 'danger', disabled: terminal, onclick: act('Kill', () => api.post(`/v1/workers/${id}/kill`, { reason: reason.value.trim() || 'operator console', cascade: cascade.checked })) }, 'Kill worker'),
    ),
  )
  $('worker-panel').replaceChildren(actions, status, dl)
}

// --- denials and audit ------------------------------------------------------------------------

function renderDenials() {
  const since = Date.now() - DENIAL_WINDOW_MS
  state.denials = state.denials.filter((d) => d.at >= since)
  const byCode = new Map()
  for (const d of state.denials) {
    const entry = byCode.get(d.code) ?? { n: 0, last: 0 }
    entry.n++
    entry.last = Math.max(entry.last, d.at)
    byCode.set(d.code, entry)
  }
  const list = $('denials')
  if (byCode.size === 0) list.replaceChildren(el('li', { class: 'note' }, 'None.'))
  else
    list.replaceChildren(
      ...[...byCode].sort((a, b) => b[1].n - a[1].n).map(([code, { n, last }]) => el('li', {}, el('span', { class: 'n' }, String(n)), ` ${code}`, el('span', { class: 'note' }, ` last at ${new Date(last).toISOString().slice(11, 19)}`))),
    )
}
setInterval(() => state.summary && renderDenials(), 10_000)

// Sandbox usage is read from the cgroup every few seconds, not audited: refresh the managed
// workers in view (and the selected one) while the page is visible.
setInterval(async () => {
  if (!state.summary || document.hidden) return
  const live = (w) => w?.managed === true && w.sandbox && w.sandbox.state !== 'ended'
  const ids = view.visibleIds().filter((id) => live(model.workers.get(id)))
  if (ids.length === 0) return
  const views = await Promise.all(ids.map((id) => api.get(`/v1/workers/${id}`).catch(() => null)))
  for (const w of views) if (w) model.upsert(w)
  renderTree()
  // Not while the operator is typing a reason in the panel.
  if (state.selected && ids.includes(state.selected) && !$('worker-panel').contains(document.activeElement)) await showWorker(state.selected)
}, 5_000)

function renderFeed() {
  $('audit').replaceChildren(
    ...state.feed.map((r) =>
      el(
        'li',
        { class: `audit-${r.type}` },
        el('span', { class: 'seq' }, `#${r.seq}`),
        el('span', { class: 'meta' }, time(r.at)),
        el('span', { class: 'type' }, r.type),
        r.code ? el('span', { class: 'code' }, r.code) : null,
        r.worker_id ? el('span', { class: 'wid small' }, r.worker_id) : null,
      ),
    ),
  )
}

async function verifyChain() {
  $('chain').textContent = 'verifying…'
  try {
    const v = await api.get('/v1/audit/verify')
    const at = new Date().toISOString().slice(11, 19)
    $('chain').textContent = v.ok ? `chain verified: ${v.records} records (${at})` : `CHAIN BROKEN at seq ${v.first_invalid_seq} (${at})`
    $('chain').className = `chain ${v.ok ? 'ok' : 'broken'}`
  } catch (error) {
    $('chain').textContent = `verification failed: ${error.message}`
  }
}
$('verify').addEventListener('click', () => void verifyChain())

// --- contract ---------------------------------------------------------------------------------

const CONTRACT_FIELDS = [
  ['max_depth', 'Max depth', 'int'],
  ['max_replicas', 'Max replicas', 'int'],
  ['cooldown_seconds', 'Cooldown (s)', 'number'],
  ['expiration_seconds', 'Worker lifetime (s, empty: unlimited)', 'nullable'],
  ['heartbeat_timeout_seconds', 'Heartbeat timeout (s)', 'number'],
  ['manifest_ttl_seconds', 'Manifest TTL (s)', 'number'],
  ['default_resources.cpu_limit', 'Default CPU', 'number'],
  ['default_resources.memory_limit_mb', 'Default memory (MB)', 'int'],
  ['default_resources.network_policy.allow_external', 'Default: external network', 'bool'],
  ['max_resources.cpu_limit', 'Max CPU', 'number'],
  ['max_resources.memory_limit_mb', 'Max memory (MB)', 'int'],
  ['max_resources.network_policy.allow_external', 'Max: external network', 'bool'],
  ['stop_conditions', 'Stop conditions (JSON)', 'json'],
]
const fieldId = (path) => `c-${path.replace(/\./g, '-')}`
const getPath = (obj, path) => path.split('.').reduce((o, k) => (o == null ? undefined : o[k]), obj)
const setPath = (obj, path, value) => {
  const keys = path.split('.')
  let o = obj
  for (const k of keys.slice(0, -1)) o = o[k] ??= {}
  o[keys.at(-1)] = value
}

function buildContractForm() {
  const box = $('contract-fields')
  box.replaceChildren()
  for (const [path, label, kind] of CONTRACT_FIELDS) {
    const id = fieldId(path)
    const input =
      kind === 'json'
        ? el('textarea', { id, rows: 3, spellcheck: false })
        : kind === 'bool'
          ? el('input', { id, type: 'checkbox' })
          : el('input', { id, type: 'text', inputMode: 'decimal', autocomplete: 'off' })
    const error = el('span', { id: `${id}-error`, class: 'field-error' })
    input.setAttribute('aria-describedby', `${id}-error`)
    input.addEventListener('input', () => {
      state.contractDirty = true
      error.textContent = ''
      input.removeAttribute('aria-invalid')
    })
    box.append(el('div', { class: `field field-${kind}` }, el('label', { for: id }, label), input, error))
  }
}

async function loadContract(fromStream = false) {
  const contract = await api.get('/v1/contract')
  state.contract = contract
  $('contract-version').textContent = `version ${contract.version}, updated ${contract.updated_at.replace('T', ' ').slice(0, 19)} UTC`
  if (fromStream && state.contractDirty) return // keep the operator's edit
  if (!$('contract-fields').firstChild) buildContractForm()
  for (const [path, , kind] of CONTRACT_FIELDS) {
    const input = $(fieldId(path))
    const value = getPath(contract, path)
    if (kind === 'bool') input.checked = Boolean(value)
    else if (kind === 'json') input.value = JSON.stringify(value, null, 1)
    else input.value = value === null || value === undefined ? '' : String(value)
  }
  state.contractDirty = false
  clearContractErrors()
}

function clearContractErrors() {
  $('contract-error').textContent = ''
  for (const [path] of CONTRACT_FIELDS) {
    $(`${fieldId(path)}-error`).textContent = ''
    $(fieldId(path)).removeAttribute('aria-invalid')
  }
}

$('contract-form').addEventListener('submit', async (event) => {
  event.preventDefault()
  clearContractErrors()
  $('contract-saved').textContent = ''
  const { version: _v, updated_at: _u, ...body } = structuredClone(state.contract)
  for (const [path, label, kind] of CONTRACT_FIELDS) {
    const input = $(fieldId(path))
    const raw = input.value.trim()
    let value
    if (kind === 'bool') value = input.checked
    else if (kind === 'json') {
      try {
        value = JSON.parse(raw || '[]')
      } catch {
        return showFieldError(path, `${label}: not valid JSON`)
      }
    } else if (kind === 'nullable' && raw === '') value = null
    else value = raw !== '' && !Number.isNaN(Number(raw)) ? Number(raw) : raw
    setPath(body, path, value)
  }
  try {
    const saved = await api.put('/v1/contract', body)
    state.contractDirty = false
    $('contract-saved').textContent = `saved as version ${saved.version}`
    await loadContract()
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 400) return ($('contract-error').textContent = error.message)
    placeContractErrors(error.problem)
  }
})

/** Puts each of the server's messages beside the field it names (the longest matching path). */
function placeContractErrors(problem) {
  const messages = String(problem?.detail ?? 'invalid contract').split('; ')
  const paths = problem?.errors ?? messages.map((m) => m.split(' ')[0])
  let placed = 0
  messages.forEach((message, i) => {
    const path = paths[i] ?? message.split(' ')[0]
    const field = CONTRACT_FIELDS.map(([p]) => p)
      .filter((p) => path === p || path.startsWith(`${p}.`))
      .sort((a, b) => b.length - a.length)[0]
    if (field) {
      showFieldError(field, message)
      placed++
    }
  })
  if (placed === 0) $('contract-error').textContent = problem?.detail ?? 'the contract was refused'
}

function showFieldError(path, message) {
  const error = $(`${fieldId(path)}-error`)
  error.textContent = error.textContent ? `${error.textContent}; ${message}` : message
  $(fieldId(path)).setAttribute('aria-invalid', 'true')
}

void boot()
