// The `none` driver: this host cannot run sandboxes (or the operator chose not to). Every launch
// is refused with sandbox_unavailable and the reason; the controller still serves external workers.
import { SandboxUnavailableError, type DriverStatus, type SandboxDriver } from './driver.js'

export function createNoneDriver(reason: string): SandboxDriver {
  const status: DriverStatus = {
    driver: 'none',
    available: false,
    reason,
    cgroup: null,
    enforces: { memory: false, cpu: false, pids: false, network: false, freeze: false, kill: false },
  }
  return {
    name: 'none',
    status: () => status,
    launch: () => Promise.reject(new SandboxUnavailableError(`no sandbox driver: ${reason}`)),
    // Nothing was ever launched here, so there is nothing to kill, freeze or measure.
    kill: () => Promise.resolve(),
    freeze: () => Promise.reject(new SandboxUnavailableError(`no sandbox driver: ${reason}`)),
    thaw: () => Promise.reject(new SandboxUnavailableError(`no sandbox driver: ${reason}`)),
    usage: () => null,
    onExit: () => {},
    shutdown: () => Promise.resolve(),
  }
}
