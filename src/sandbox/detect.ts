// WARDEN_SANDBOX: `process` insists (a host that cannot enforce is a start-up error naming the
// cause), `none` declines, `auto` takes `process` when this host can run it and otherwise `none`
// with the reason, so `npm start` works everywhere and says what is missing.
import { SandboxUnavailableError, type SandboxDriver } from './driver.js'
import { createNoneDriver } from './none-driver.js'
import { createProcessDriver, type ProcessDriverOptions } from './process-driver.js'

export type SandboxMode = 'auto' | 'process' | 'none'

export async function detectSandboxDriver(mode: SandboxMode, options: ProcessDriverOptions): Promise<SandboxDriver> {
  if (mode === 'none') return createNoneDriver('disabled by WARDEN_SANDBOX=none')
  try {
    return await createProcessDriver(options)
  } catch (error) {
    if (mode === 'process') throw error
    const reason = error instanceof SandboxUnavailableError ? error.message : `process driver failed: ${String(error)}`
    options.log?.warn({ reason }, `sandboxes unavailable, serving external workers only: ${reason}`)
    return createNoneDriver(reason)
  }
}
