// Where a worker runs. The durable sandbox record (resources and status from launch to stop)
// is written by admission in the same transaction as the worker; a driver then acts on
// the outside world after commit. The default driver only keeps the record.
import type { Resources } from '../schemas/index.js'

export interface SandboxDriver {
  readonly name: string
  launch(workerId: string, resources: Resources): void
  stop(workerIds: readonly string[] | 'all', reason: string): void
}

export const recordOnlyDriver: SandboxDriver = {
  name: 'record',
  launch() {},
  stop() {},
}
