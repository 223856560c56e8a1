// A well-behaved managed demo worker: started by Warden in a sandbox (Worker.fromEnv reads
// WARDEN_URL, the lease and the manifest), it works and asks to replicate; an approved child is
// launched by Warden running this same program. It stops when the controller says so.
import { Worker } from '../client/worker.js'

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms)
    signal?.addEventListener('abort', () => (clearTimeout(timer), reject(signal.reason)), { once: true })
  })

const workMs = Number(process.env.DEMO_WORK_MS ?? 300)
const worker = await Worker.fromEnv({ onTerminate: () => void setTimeout(() => process.exit(0), 20) })
let workDone = 0
let nextAttemptAt = 0
while (worker.state !== 'terminated') {
  try {
    await worker.perform((signal) => sleep(workMs, signal))
  } catch {
    await sleep(200)
    continue
  }
  workDone += 1
  if (Date.now() < nextAttemptAt) continue
  try {
    const result = await worker.maybeReplicate('demo: split the work', { task: 'demo', parent_work_done: workDone })
    if (!result.approved) nextAttemptAt = Date.now() + (result.code === 'cooldown_active' ? (result.retry_after ?? 1) * 1000 : 1_500)
  } catch {
    nextAttemptAt = Date.now() + 1_000
  }
}
