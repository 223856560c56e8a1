// `npx warden demo` on a host that can run sandboxes: managed workers and a rogue that ignores its
// 410, forks, allocates past its memory limit and tries to reach the outside — each attempt
// contained, and the kill switch ends every sandbox. Checked from the demo's summary and /proc.
import { existsSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import type { ManagedDemoSummary } from '../../src/cli/demo-managed.js'
import { canRunSandboxes } from '../helpers/sandbox-lab.js'
import { binary } from './support.js'

describe.runIf(canRunSandboxes)('warden demo with sandboxes', () => {
  it('contains the rogue (no network, OOM at its limit, forks refused) and the kill switch ends every sandbox', async () => {
    const result = await binary(['demo', '--json', '--duration', '25'], {}, 90_000)
    expect(result.code, result.stderr).toBe(0)
    const summary = JSON.parse(result.stdout) as ManagedDemoSummary
    expect(summary.managed).toBe(true)
    const { rogue } = summary
    expect(rogue.report).not.toBeNull()
    for (const [target, outcome] of Object.entries(rogue.report!.network)) expect(outcome, target).not.toBe('CONNECTED')
    expect(rogue.report!.memory.allocator).toBe('killed by SIGKILL')
    expect(rogue.oom_audited).toBe(true)
    expect(rogue.report!.forks.refused).toBe('EAGAIN')
    expect(rogue.pids_seen).toBeLessThanOrEqual(256)
    expect(rogue).toMatchObject({ status: 'killed', reason: 'kill_switch' })
    expect(summary.kill_switch.still_running).toBe(0)
    expect(summary.kill_switch.all_ended_ms).not.toBeNull()
    expect(summary.audit.ok).toBe(true)
    // The demo's own controller is gone, and with it every sandbox process.
    for (const pid of [result.pid]) expect(existsSync(`/proc/${pid}`)).toBe(false)
  })
})
