// Realistic examples for the OpenAPI document (Swagger UI fills its "Try it out" bodies and
// sample responses from them). Plain data, one coherent story: a root worker that spawned once.
const ROOT_ID = '3f9c2a7e5b8d4c1fa0e6d2b9c7f41a58'
const CHILD_ID = '8b1e4d2c9a7f40e3b5c6d8e1f2a3b4c5'
const resources = { cpu_limit: 0.5, memory_limit_mb: 256, network_policy: { allow_controller: true, allow_external: false } }
const contractSpec = {
  max_depth: 3,
  max_replicas: 20,
  cooldown_seconds: 5,
  expiration_seconds: 3600,
  heartbeat_timeout_seconds: 15,
  manifest_ttl_seconds: 60,
  default_resources: resources,
  max_resources: { cpu_limit: 2, memory_limit_mb: 2048, network_policy: { allow_controller: true, allow_external: false } },
  stop_conditions: [
    {
      name: 'memory_budget',
      description: 'the swarm stays under 2 GiB',
      expression: 'manifest.resources.memory_limit_mb * (active_count + 1) > 2048',
    },
  ],
}
const manifest = {
  worker_id: CHILD_ID,
  parent_id: ROOT_ID,
  depth: 1,
  state_snapshot: { task: 'summarise shard 7', step: 12 },
  resources,
  issued_at: '2026-03-14T09:26:53.589Z',
  expires_at: '2026-03-14T09:27:53.589Z',
  key_id: 'k1-7c2e9f04a1b35d68',
  signature: '9a0c5e7b3d1f2468ace0bd13579f2468ace013579bdf2468ace013579bdf2468',
}
const summary = {
  worker_id: CHILD_ID,
  parent_id: ROOT_ID,
  depth: 1,
  status: 'active',
  reason: null,
  resources,
  key_id: 'k1-7c2e9f04a1b35d68',
  issued_at: '2026-03-14T09:26:53.589Z',
  registered_at: '2026-03-14T09:26:54.102Z',
  last_heartbeat_at: '2026-03-14T09:31:04.877Z',
  lease_expires_at: '2026-03-14T09:31:19.877Z',
  expires_at: '2026-03-14T10:26:54.102Z',
  ended_at: null,
  managed: false,
  sandbox: null,
}
const program = { command: ['node', 'worker.mjs'], env: { AGENT_MODE: 'summarise' } }
const sandboxUsage = { cpu_seconds: 12.4, memory_bytes: 48_234_496, memory_peak_bytes: 61_865_984, pids: 3, oom_kills: 0 }
const sandbox = {
  driver: 'process',
  state: 'running',
  pid: 48213,
  started_at: '2026-03-14T09:26:54.180Z',
  ended_at: null,
  exit_code: null,
  signal: null,
  usage: sandboxUsage,
}
const managedWorker = {
  ...summary,
  worker_id: ROOT_ID,
  parent_id: null,
  depth: 0,
  managed: true,
  sandbox,
  state_snapshot: { task: 'summarise the corpus' },
  children_count: 0,
}
const worker = { ...summary, state_snapshot: manifest.state_snapshot, children_count: 0 }
const killed = { ...worker, status: 'killed', reason: 'runaway memory use', ended_at: '2026-03-14T09:32:00.000Z' }
const auditRecord = {
  seq: 42,
  at: '2026-03-14T09:26:53.589Z',
  type: 'spawn_approved',
  actor: `worker:${ROOT_ID}`,
  worker_id: CHILD_ID,
  parent_id: ROOT_ID,
  code: null,
  data: { reason: 'shard 7 needs a second reader', depth: 1 },
  prev_hash: '5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8',
  hash: '6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b',
}

export const EXAMPLES = {
  workerId: ROOT_ID,
  timestamp: '2026-03-14T09:26:53.589Z',
  networkPolicy: resources.network_policy,
  resources,
  stateSnapshot: manifest.state_snapshot,
  stopCondition: contractSpec.stop_conditions[0]!,
  contractSpec,
  contract: { ...contractSpec, version: 4, updated_at: '2026-03-14T08:00:00.000Z' },
  manifest,
  rootManifestRequest: { state_snapshot: { task: 'summarise the corpus' }, resources },
  spawnRequest: { reason: 'shard 7 needs a second reader', state_snapshot: manifest.state_snapshot },
  heartbeatRequest: { metrics: { tokens_per_second: 41.5, queue_depth: 3 } },
  heartbeatResponse: {
    directive: 'continue',
    lease_expires_at: '2026-03-14T09:31:19.877Z',
    expires_at: '2026-03-14T10:26:54.102Z',
    heartbeat_interval_seconds: 5,
    heartbeat_timeout_seconds: 15,
  },
  summary,
  worker,
  registration: {
    worker,
    lease_token: 'Q2h1bmsgb2YgZW50cm9weSwgbm90IGEgcmVhbCB0b2tlbg',
    heartbeat_interval_seconds: 5,
    heartbeat_timeout_seconds: 15,
  },
  workerList: { items: [summary], next_cursor: null },
  lineageNode: { worker_id: CHILD_ID, parent_id: ROOT_ID, depth: 1, status: 'active', managed: true, sandbox },
  lineage: {
    worker_id: ROOT_ID,
    ancestors: [],
    descendants: [{ worker_id: CHILD_ID, parent_id: ROOT_ID, depth: 1, status: 'active', managed: false, sandbox: null }],
    truncated: false,
  },
  reasonBody: { reason: 'investigating a spike in spawn requests' },
  killRequest: { reason: 'runaway memory use', cascade: true },
  killResult: { worker: killed, killed: [CHILD_ID] },
  killSwitch: { engaged: true, engaged_at: '2026-03-14T09:40:00.000Z', reason: 'operator drill' },
  killSwitchEngaged: {
    engaged: true,
    engaged_at: '2026-03-14T09:40:00.000Z',
    reason: 'operator drill',
    terminated: 7,
    manifests_voided: 1,
  },
  program,
  sandboxUsage,
  sandbox,
  sandboxLaunchRequest: { program, state_snapshot: { task: 'summarise the corpus' }, resources },
  sandboxLaunch: {
    worker: managedWorker,
    manifest: { ...manifest, worker_id: ROOT_ID, parent_id: null, depth: 0, state_snapshot: { task: 'summarise the corpus' } },
  },
  sandboxDriverStatus: {
    driver: 'process',
    available: true,
    reason: 'cgroup v1 hierarchies (no cgroup2 controllers here)',
    cgroup: 'hybrid',
    enforces: { memory: true, cpu: true, pids: true, network: true, freeze: true, kill: true },
  },
  auditRecord,
  auditPage: { items: [auditRecord], next_after_seq: null, next_before_seq: null },
  auditVerification: {
    ok: true,
    records: 42,
    head_hash: auditRecord.hash,
    first_invalid_seq: null,
  },
  problem: {
    type: 'about:blank',
    title: 'Replication denied',
    status: 403,
    code: 'quota_exceeded',
    detail: '20 of max_replicas 20 slots are taken (live workers and outstanding manifests)',
    instance: `/v1/workers/${ROOT_ID}/spawn`,
    request_id: '0b6f3c1e-9d2a-4f57-8e4b-2c1d7a9f5e63',
  },
}
