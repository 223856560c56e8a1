// SPEC §2.5: resources never grow down the tree and never exceed the contract.
import type { Resources } from '../schemas/index.js'

/** The first field in which `wanted` exceeds `limit`, or null when it fits. */
export function exceeds(wanted: Resources, limit: Resources): string | null {
  if (wanted.cpu_limit > limit.cpu_limit) return `cpu_limit ${wanted.cpu_limit} > ${limit.cpu_limit}`
  if (wanted.memory_limit_mb > limit.memory_limit_mb) {
    return `memory_limit_mb ${wanted.memory_limit_mb} > ${limit.memory_limit_mb}`
  }
  if (wanted.network_policy.allow_external && !limit.network_policy.allow_external) {
    return 'allow_external is not allowed'
  }
  if (wanted.network_policy.allow_controller && !limit.network_policy.allow_controller) {
    return 'allow_controller is not allowed'
  }
  return null
}

/** The largest resources within both: what a child gets when its request names none. */
export function within(a: Resources, b: Resources): Resources {
  return {
    cpu_limit: Math.min(a.cpu_limit, b.cpu_limit),
    memory_limit_mb: Math.min(a.memory_limit_mb, b.memory_limit_mb),
    network_policy: {
      allow_controller: a.network_policy.allow_controller && b.network_policy.allow_controller,
      allow_external: a.network_policy.allow_external && b.network_policy.allow_external,
    },
  }
}
