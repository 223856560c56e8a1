// warden kill-switch [engage|disengage|status]
import { stringOption, type Command } from './command.js'
import { EXIT, UsageError, type Context } from './context.js'
import type { KillSwitchState } from '../schemas/index.js'

function describe(ctx: Context, state: KillSwitchState): string {
  return state.engaged
    ? `${ctx.style.red(ctx.style.bold('ENGAGED'))} since ${state.engaged_at}${state.reason ? ` (${state.reason})` : ''}`
    : ctx.style.green('disengaged')
}

export const killSwitchCommands: Command[] = [
  {
    name: ['kill-switch'],
    args: ['[engage|disengage|status]'],
    summary: 'Show, engage or disengage the kill switch',
    details: [
      'engage terminates every live worker in one transaction and refuses all admission until an',
      'operator disengages it; engaging twice is harmless. status is the default.',
    ],
    options: { reason: { type: 'string', value: 'TEXT', description: 'why (engage), kept in the audit log' } },
    arity: [0, 1],
    async run(ctx) {
      const action = ctx.positionals[0] ?? 'status'
      const client = ctx.client()
      if (action === 'status') {
        const state = await client.getKillSwitch()
        if (ctx.json) ctx.printJson(state)
        else ctx.out(`kill switch: ${describe(ctx, state)}`)
        return EXIT.ok
      }
      if (action === 'engage') {
        const result = await client.engageKillSwitch(stringOption(ctx.values, 'reason'))
        if (ctx.json) ctx.printJson(result)
        else {
          ctx.out(`kill switch: ${describe(ctx, result)}`)
          ctx.out(`${result.terminated} worker(s) terminated, ${result.manifests_voided} outstanding manifest(s) voided`)
        }
        return EXIT.ok
      }
      if (action === 'disengage') {
        if (ctx.values.reason !== undefined) throw new UsageError('--reason goes with engage')
        const state = await client.disengageKillSwitch()
        if (ctx.json) ctx.printJson(state)
        else ctx.out(`kill switch: ${describe(ctx, state)}; terminated workers stay terminated`)
        return EXIT.ok
      }
      throw new UsageError(`unknown action ${JSON.stringify(action)}: use engage, disengage or status`)
    },
  },
]
