// One demo worker, as its own OS process: registers with the manifest it was launched with,
// does simulated work, asks to replicate, and reports to the demo over the IPC channel. The demo
// launches whatever child the controller approves. It obeys the controller (suspend, terminate)
// and stops if the demo that launched it goes away.
import { WardenError } from '../client/errors.js'
import { Worker, type ReplicationDenial } from '../client/worker.js'
import type { DenialCode, StopReason } from '../client/errors.js'
import type { Manifest } from '../schemas/index.js'

export type DemoMessage =
  | { type: 'registered'; worker_id: string; pid: number }
  | { type: 'work'; worker_id: string; work_done: number }
  | { type: 'spawn'; worker_id: string; manifest: Manifest }
  | { type: 'denied'; worker_id: string; code: DenialCode; detail: string; condition?: string; retry_after?: number }
  | { type: 'state'; worker_id: string; state: 'running' | 'suspended' | 'unreachable' }
  | { type: 'terminated'; worker_id: string; reason: StopReason; detail: string }
  | { type: 'failed'; worker_id: string; code: string; detail: string }

const send = (message: DemoMessage) => {
  if (process.connected) process.send?.(message)
}
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms)
    signal?.addEventListener('abort', () => (clearTimeout(timer), reject(signal.reason)), { once: true })
  })

/** What a denial means for this worker's next attempt (ms to wait), or null to stop asking. */
function nextAttemptAfter(denial: ReplicationDenial): number | null {
  switch (denial.code) {
    case 'depth_exceeded':
    case 'kill_switch_engaged':
    case 'worker_terminated':
      return null
    case 'cooldown_active':
      return (denial.retry_after ?? 1) * 1000
    case 'stop_condition':
      return 0
    default:
      return 1_500
  }
}

async function main(): Promise<void> {
  const manifest = JSON.parse(process.env.WARDEN_MANIFEST ?? 'null') as Manifest
  const url = process.env.WARDEN_URL
  const workMs = Number(process.env.WARDEN_DEMO_WORK_MS ?? 300)
  // A backstop only: the controller's expiration and the kill switch are what stop a worker.
  const maxRunMs = Number(process.env.WARDEN_DEMO_MAX_RUN_MS ?? 120_000)
  if (!manifest || !url) throw new Error('WARDEN_MANIFEST and WARDEN_URL are required')
  const id = manifest.worker_id
  process.title = `warden-demo-worker ${id.slice(0, 8)} d${manifest.depth}`

  const exit = (code: number) => setTimeout(() => process.exit(code), 20)
  let worker: Worker
  try {
    worker = await Worker.start(manifest, {
      url,
      onTerminate: (reason, detail) => {
        send({ type: 'terminated', worker_id: id, reason, detail })
        exit(0)
      },
      onEvent: (event) => {
        if (event.type === 'suspended') send({ type: 'state', worker_id: id, state: 'suspended' })
        if (event.type === 'resumed' || event.type === 'controller_reachable') send({ type: 'state', worker_id: id, state: 'running' })
        if (event.type === 'controller_unreachable') send({ type: 'state', worker_id: id, state: 'unreachable' })
      },
    })
  } catch (error) {
    const failure = error instanceof WardenError ? error : null
    send({ type: 'failed', worker_id: id, code: failure?.code ?? 'error', detail: failure?.detail ?? String(error) })
    exit(1)
    return
  }
  send({ type: 'registered', worker_id: id, pid: process.pid })

  const stop = (why: string) => void worker.shutdown(why)
  process.on('disconnect', () => stop('the demo that launched this worker is gone'))
  process.on('SIGTERM', () => stop('stopped by the demo'))
  process.on('SIGINT', () => stop('interrupted'))
  setTimeout(() => stop('demo run time over'), maxRunMs).unref()

  let workDone = 0
  let nextAttemptAt = 0
  let asking = true
  while (worker.state !== 'terminated') {
    try {
      await worker.perform((signal) => sleep(workMs, signal))
    } catch {
      // Suspended or terminated: wait for the next directive.
      await sleep(200)
      continue
    }
    workDone += 1
    send({ type: 'work', worker_id: id, work_done: workDone })
    if (!asking || Date.now() < nextAttemptAt) continue
    try {
      const result = await worker.maybeReplicate('demo: split the work', { task: 'demo', parent_work_done: workDone })
      if (result.approved) {
        send({ type: 'spawn', worker_id: id, manifest: result.manifest })
        continue
      }
      const { code, detail, condition, retry_after } = result
      send({ type: 'denied', worker_id: id, code, detail, ...(condition ? { condition } : {}), ...(retry_after ? { retry_after } : {}) })
      const wait = nextAttemptAfter(result)
      if (wait === null) asking = false
      else nextAttemptAt = Date.now() + wait
    } catch {
      // The controller is unreachable: the heartbeat loop decides whether this worker may live on.
      nextAttemptAt = Date.now() + 1_000
    }
  }
}

await main()
