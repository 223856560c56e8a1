// Who an audit record names as having acted.
export const operatorActor = 'operator'
export const controllerActor = 'controller'
export const workerActor = (workerId: string): string => `worker:${workerId}`
