// After the whole run: no cgroup of a controller that is gone stays behind. Tests that SIGKILL a
// controller leave its cgroups for "the next start" (SPEC §5); when no start follows in this run,
// this is it. Folders of live controllers (another run on the same host) are left alone.
import { sweepDeadControllers } from '../../src/sandbox/process-driver.js'

export async function teardown(): Promise<void> {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return
  await sweepDeadControllers('warden')
}
