// SPEC §2.6 the kill switch: once engaged and until an operator disengages it, nothing is
// admitted (the first admission rule) and every heartbeat answers terminate; every worker alive
// at engagement is terminated in the transaction that engages it. The state is stored, so it
// survives restarts.
import type { KillSwitchEngaged, KillSwitchState } from '../schemas/index.js'
import { iso, isoOrNull } from './clock.js'
import { operatorActor } from './actors.js'
import { type DomainDeps } from './context.js'

export function createKillSwitch(deps: Pick<DomainDeps, 'store' | 'clock' | 'sandbox' | 'leases'>) {
  const { store, clock, sandbox, leases } = deps

  const state = (): KillSwitchState => {
    const row = store.killSwitch.get()
    return { engaged: row.engaged === 1, engaged_at: isoOrNull(row.engaged_at), reason: row.reason }
  }

  return {
    state,

    /** Engaging twice is harmless: the first engagement stands and nothing more is terminated. */
    engage(reason: string | undefined): KillSwitchEngaged {
      const result = store.transaction(() => {
        if (store.killSwitch.get().engaged === 1) return { terminated: 0, manifests_voided: 0 }
        const now = clock.now()
        const why = reason ?? null
        store.killSwitch.set({ engaged: 1, engaged_at: now, reason: why })
        const killed = store.workers.killAllLive('kill_switch', now)
        store.afterCommit(() => leases.clear())
        const manifestsVoided = store.manifests.voidAll()
        // One record names every worker it terminated, so the chain proves who was stopped.
        store.audit.append(
          {
            type: 'kill_switch_engaged',
            actor: operatorActor,
            code: 'kill_switch',
            data: { reason: why, terminated: killed.length, worker_ids: killed, manifests_voided: manifestsVoided },
          },
          iso(now),
        )
        return { terminated: killed.length, manifests_voided: manifestsVoided }
      }, { critical: true })
      if (result.terminated > 0) sandbox.stop('all', 'kill_switch')
      return { ...state(), ...result }
    },

    disengage(): KillSwitchState {
      store.transaction(() => {
        const current = store.killSwitch.get()
        if (current.engaged === 0) return
        store.killSwitch.set({ engaged: 0, engaged_at: null, reason: null })
        store.audit.append(
          { type: 'kill_switch_disengaged', actor: operatorActor, data: { engaged_at: isoOrNull(current.engaged_at), reason: current.reason } },
          iso(clock.now()),
        )
      })
      return state()
    },
  }
}

export type KillSwitch = ReturnType<typeof createKillSwitch>
