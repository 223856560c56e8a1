// SPEC §2.4 authenticity: only a manifest signed by a key Warden holds registers, at most once,
// and never after expires_at. Changing any byte of any signed field must make registration fail.
import { createHmac } from 'node:crypto'
import canonicalize from 'canonicalize'
import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import { ManualClock } from '../../src/domain/clock.js'
import { DEFAULT_CONTRACT } from '../../src/domain/contract.js'
import { DomainError } from '../../src/domain/errors.js'
import type { Warden } from '../../src/domain/index.js'
import { canonicalJson, createSigner, keyIdFor } from '../../src/domain/signing.js'
import { ManifestSchema, type Manifest } from '../../src/schemas/index.js'
import { openDatabase } from '../../src/store/db.js'
import { createStore } from '../../src/store/index.js'
import { storeHooks } from '../../src/domain/store-hooks.js'
import { createTestWarden, registerRoot, SIGNING_KEY, type TestWarden, storeOf, clockOf, buildWarden } from '../helpers/harness.js'
import { auditRecords, expectDomainError, lastAudit, manifestStatus, SECOND, tableCount, worker } from './support.js'

const OTHER_KEY = Buffer.from('another-signing-key-that-warden-never-held-0123', 'utf8')
const OLD_KEY = Buffer.from('the-previous-signing-key-still-in-the-ring-0123', 'utf8')

const open: Array<{ close(): void }> = []
function setup(): TestWarden {
  const t = createTestWarden({ max_replicas: 1000 })
  open.push(t)
  return t
}
afterEach(() => {
  for (const t of open.splice(0)) t.close()
})

const clone = <T>(value: T): T => structuredClone(value)
const snapshot = { task: { step: 1, tags: ['a', 'b'], done: false }, seed: 7, note: 'hello' }

/** A registered root with a snapshot, and an outstanding child manifest of it. */
function childManifest(warden: Warden): Manifest {
  const root = registerRoot(warden, { state_snapshot: snapshot })
  return warden.admission.spawn(worker(warden, root.id), { reason: 'test', state_snapshot: snapshot })
}

/** Refused, and (SPEC §7) not audited by itself: counted into the per-minute summary instead. */
function expectRejected(warden: Warden, tampered: Manifest, code: 'invalid_signature' | 'unknown_key') {
  const workers = tableCount(warden, 'workers')
  const audits = auditRecords(warden).length
  expectDomainError(() => warden.admission.register(tampered), code)
  expect(tableCount(warden, 'workers')).toBe(workers)
  expect(auditRecords(warden).length).toBe(audits)
  expect(warden.summarizeRejections(true)).toBe(1)
  expect(lastAudit(warden)).toMatchObject({ type: 'registrations_rejected', actor: 'controller', worker_id: null, data: { counts: { [code]: 1 }, total: 1 } })
}

const flipHex = (hex: string, at = 0): string => hex.slice(0, at) + (hex[at] === '0' ? '1' : '0') + hex.slice(at + 1)
const shiftIso = (iso: string, ms: number): string => new Date(Date.parse(iso) + ms).toISOString()

type Tamper = [string, (m: Manifest) => void]
const tampers: Tamper[] = [
  ['worker_id (one hex digit)', (m) => void (m.worker_id = flipHex(m.worker_id, 31))],
  ['parent_id (another id)', (m) => void (m.parent_id = flipHex(m.parent_id!, 5))],
  ['parent_id (null: claim to be a root)', (m) => void (m.parent_id = null)],
  ['depth (+1)', (m) => void (m.depth += 1)],
  ['depth (0: claim to be a root)', (m) => void (m.depth = 0)],
  ['state_snapshot (add a nested key)', (m) => void ((m.state_snapshot.task as Record<string, unknown>).extra = 1)],
  ['state_snapshot (change a nested value)', (m) => void ((m.state_snapshot.task as Record<string, unknown>).step = 2)],
  ['state_snapshot (change an array item)', (m) => void ((m.state_snapshot.task as { tags: string[] }).tags[1] = 'c')],
  ['state_snapshot (remove a nested key)', (m) => void delete (m.state_snapshot.task as Record<string, unknown>).done],
  ['state_snapshot (add a top-level key)', (m) => void (m.state_snapshot.admin = true)],
  ['state_snapshot (remove a top-level key)', (m) => void delete m.state_snapshot.note],
  ['resources.cpu_limit', (m) => void (m.resources.cpu_limit += 0.25)],
  ['resources.cpu_limit (tiny change)', (m) => void (m.resources.cpu_limit += 1e-9)],
  ['resources.memory_limit_mb', (m) => void (m.resources.memory_limit_mb += 1)],
  ['resources.network_policy.allow_controller', (m) => void (m.resources.network_policy.allow_controller = !m.resources.network_policy.allow_controller)],
  ['resources.network_policy.allow_external', (m) => void (m.resources.network_policy.allow_external = !m.resources.network_policy.allow_external)],
  ['issued_at (+1 ms)', (m) => void (m.issued_at = shiftIso(m.issued_at, 1))],
  ['expires_at (+1 hour)', (m) => void (m.expires_at = shiftIso(m.expires_at, 3_600_000))],
  ['expires_at (-1 ms)', (m) => void (m.expires_at = shiftIso(m.expires_at, -1))],
  ['an added top-level field', (m) => void ((m as Record<string, unknown>).admin = true)],
  ['signature (one hex digit)', (m) => void (m.signature = flipHex(m.signature, 17))],
  ['signature (truncated)', (m) => void (m.signature = m.signature.slice(0, 62))],
  ['signature (another valid manifest signature)', (m) => void (m.signature = createSigner(SIGNING_KEY).sign({ ...m, depth: 9 }).signature)],
]

describe('tampering with a signed manifest', () => {
  for (const [field, tamper] of tampers) {
    it(`refuses a manifest with a changed ${field} as invalid_signature and counts it without an audit record of its own`, () => {
      const { warden } = setup()
      const original = childManifest(warden)
      const tampered = clone(original)
      tamper(tampered)
      expect(canonicalJson(tampered)).not.toBe(canonicalJson(original))
      expectRejected(warden, tampered, 'invalid_signature')
      // The untouched manifest still registers: it was the change that was refused.
      expect(manifestStatus(warden, original.worker_id)).toBe('outstanding')
      expect(warden.admission.register(original).worker.worker_id).toBe(original.worker_id)
    })
  }

  it('refuses a manifest whose key_id was changed as unknown_key and counts it without an audit record of its own', () => {
    const { warden } = setup()
    const original = childManifest(warden)
    const tampered = { ...clone(original), key_id: keyIdFor(OTHER_KEY) }
    expectRejected(warden, tampered, 'unknown_key')
    // The summary names no worker: a forged copy of a victim's manifest never lands in its trail.
    expect(lastAudit(warden).worker_id).toBeNull()
    expect(warden.admission.register(original).worker.status).toBe('active')
  })

  it('signs the RFC 8785 canonical JSON of every field but the signature with HMAC-SHA256 (hex)', () => {
    const { warden } = setup()
    const manifest = childManifest(warden)
    const { signature, ...unsigned } = manifest
    expect(Object.keys(unsigned).sort()).toEqual(
      ['depth', 'expires_at', 'issued_at', 'key_id', 'parent_id', 'resources', 'state_snapshot', 'worker_id'].sort(),
    )
    expect(signature).toBe(createHmac('sha256', SIGNING_KEY).update(canonicalJson(unsigned)).digest('hex'))
    expect(manifest.worker_id).toMatch(/^[0-9a-f]{32}$/)
  })
})

describe('registration is once-only and time-bound', () => {
  it('refuses a replay of a registered manifest with manifest_already_used (409)', () => {
    const { warden } = setup()
    const { manifest } = registerRoot(warden)
    const workers = tableCount(warden, 'workers')
    const error = expectDomainError(() => warden.admission.register(manifest), 'manifest_already_used')
    expect(error.status).toBe(409)
    expect(tableCount(warden, 'workers')).toBe(workers)
    expect(lastAudit(warden)).toMatchObject({ type: 'registration_rejected', code: 'manifest_already_used', worker_id: manifest.worker_id })
  })

  it('refuses a replay even after the first worker has terminated', () => {
    const { warden } = setup()
    const { id, manifest } = registerRoot(warden)
    warden.transitions.deregister(id, 'done')
    expectDomainError(() => warden.admission.register(manifest), 'manifest_already_used')
    expect(worker(warden, id).status).toBe('deregistered')
  })

  it('registers until 1 ms before expires_at and refuses from expires_at on with manifest_expired', () => {
    const { warden, clock } = setup()
    const ttl = DEFAULT_CONTRACT.manifest_ttl_seconds * SECOND
    const early = warden.admission.issueRoot({})
    const late = warden.admission.issueRoot({})
    expect(Date.parse(late.expires_at) - Date.parse(late.issued_at)).toBe(ttl)
    clock.advance(ttl - 1)
    expect(warden.admission.register(early).worker.status).toBe('active')
    clock.advance(1)
    expectDomainError(() => warden.admission.register(late), 'manifest_expired')
    expect(manifestStatus(warden, late.worker_id)).toBe('expired')
    expect(lastAudit(warden)).toMatchObject({ type: 'registration_rejected', code: 'manifest_expired', worker_id: late.worker_id })
    // Once expired, it stays refused.
    expectDomainError(() => warden.admission.register(late), 'manifest_expired')
  })

  it('refuses a correctly signed manifest this controller never issued', () => {
    const { warden } = setup()
    const forged = createSigner(SIGNING_KEY).sign({
      worker_id: 'ab'.repeat(16),
      parent_id: null,
      depth: 0,
      state_snapshot: {},
      resources: DEFAULT_CONTRACT.default_resources,
      issued_at: new Date(clockOf(warden).now()).toISOString(),
      expires_at: new Date(clockOf(warden).now() + 60_000).toISOString(),
    })
    expectRejected(warden, forged, 'invalid_signature')
    expect(storeOf(warden).workers.get(forged.worker_id)).toBeUndefined()
  })
})

describe('keys', () => {
  it('refuses a manifest signed by a key Warden does not hold with unknown_key', () => {
    const { warden } = setup()
    const issued = warden.admission.issueRoot({})
    const { signature: _s, key_id: _k, ...fields } = issued
    const resigned = createSigner(OTHER_KEY).sign(fields)
    expect(resigned.key_id).not.toBe(issued.key_id)
    expectRejected(warden, resigned, 'unknown_key')
    expect(manifestStatus(warden, issued.worker_id)).toBe('outstanding')
  })

  it("refuses a manifest that names Warden's key_id but was signed with another secret", () => {
    const { warden } = setup()
    const issued = warden.admission.issueRoot({})
    const { signature: _s, ...unsigned } = issued
    const signature = createHmac('sha256', OTHER_KEY).update(canonicalJson(unsigned)).digest('hex')
    expectRejected(warden, { ...unsigned, signature }, 'invalid_signature')
  })

  it('verifies a manifest signed by a previous key of the ring after rotation, and signs new ones with the current key', () => {
    const clock = new ManualClock()
    const db = openDatabase(':memory:')
    open.push(db)
    const contract = { ...DEFAULT_CONTRACT, cooldown_seconds: 0 }
    const before = buildWarden({ store: createStore(db, storeHooks), clock, signer: createSigner(OLD_KEY), contract })
    before.liveness.resume()
    const oldManifest = before.admission.issueRoot({})
    expect(oldManifest.key_id).toBe(keyIdFor(OLD_KEY))

    const after = buildWarden({ store: createStore(db, storeHooks), clock, signer: createSigner(SIGNING_KEY, [OLD_KEY]), contract })
    expect(after.admission.register(oldManifest).worker.key_id).toBe(keyIdFor(OLD_KEY))
    const newManifest = after.admission.issueRoot({})
    expect(newManifest.key_id).toBe(keyIdFor(SIGNING_KEY))
    expect(after.admission.register(newManifest).worker.status).toBe('active')

    // A controller without the new key in its ring cannot verify what the new key signed.
    const third = after.admission.issueRoot({})
    expectDomainError(() => before.admission.register(third), 'unknown_key')
  })

  it('refuses a signing key shorter than 32 bytes', () => {
    expect(() => createSigner(Buffer.alloc(31, 1))).toThrow(/at least 32 bytes/)
  })
})

describe('canonical JSON', () => {
  const shuffleKeys = (value: unknown, order: number[]): unknown => {
    if (Array.isArray(value)) return value.map((item) => shuffleKeys(item, order))
    if (value !== null && typeof value === 'object') {
      const entries = Object.entries(value)
      const rotated = entries.map((_, i) => entries[(i + (order[i % order.length] ?? 0)) % entries.length]!)
      const seen = new Set<string>()
      const result: Record<string, unknown> = {}
      for (const [k, v] of [...rotated.reverse(), ...entries]) {
        if (seen.has(k)) continue
        seen.add(k)
        // defineProperty: a plain assignment to '__proto__' (fc.jsonValue makes such keys) would
        // set the prototype and drop the key.
        Object.defineProperty(result, k, { value: shuffleKeys(v, order), enumerable: true, writable: true, configurable: true })
      }
      return result
    }
    return value
  }

  it('is independent of key order at every level', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: 2 }], c: 3 } })).toBe(canonicalJson({ a: { c: 3, d: [2, { y: 2, z: 1 }] }, b: 1 }))
    expect(canonicalJson({ b: 1, a: 2 })).toBe('{"a":2,"b":1}')
    fc.assert(
      fc.property(fc.jsonValue(), fc.array(fc.nat(7), { minLength: 1, maxLength: 5 }), (value, order) => {
        const reordered = shuffleKeys(value, order)
        expect(canonicalJson(reordered)).toBe(canonicalJson(value))
      }),
      { numRuns: 300 },
    )
  })

  it('writes exactly what the canonicalize library writes (RFC 8785), for any JSON value', () => {
    const value = fc.oneof(
      fc.jsonValue(),
      fc.array(fc.string(), { maxLength: 50 }),
      fc.dictionary(fc.string(), fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constant(undefined), fc.date({ noInvalidDate: true }))),
      fc.array(fc.oneof(fc.jsonValue({ maxDepth: 1 }), fc.constant(undefined))),
    )
    fc.assert(
      fc.property(value, (v) => {
        expect(canonicalJson(v)).toBe(canonicalize(v))
      }),
      { numRuns: 2000 },
    )
    expect(() => canonicalJson({ a: Number.NaN })).toThrow()
    expect(() => canonicalJson(undefined)).toThrow()
  })

  it('registers a manifest whose keys arrive in another order, nested ones included', () => {
    const { warden } = setup()
    const original = childManifest(warden)
    const reordered = shuffleKeys(original, [3, 1, 2]) as Manifest
    expect(JSON.stringify(reordered)).not.toBe(JSON.stringify(original))
    expect(warden.admission.register(reordered).worker.worker_id).toBe(original.worker_id)
  })
})

describe('random mutations of a valid manifest (property)', () => {
  type Path = Array<string | number>
  const HEX = '0123456789abcdef'

  function pathsOf(value: unknown, prefix: Path = []): Path[] {
    const paths: Path[] = prefix.length === 0 ? [] : [prefix]
    if (Array.isArray(value)) value.forEach((item, i) => paths.push(...pathsOf(item, [...prefix, i])))
    else if (value !== null && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) paths.push(...pathsOf(v, [...prefix, k]))
    }
    return paths
  }

  interface Ingredients {
    pathIndex: number
    position: number
    hexDigit: string
    delta: number
    ms: number
    key: string
    json: fc.JsonValue
    structural: 'change' | 'add' | 'remove'
  }

  /** Changes the node at one path in a type-aware way (so most mutants pass the wire schema). */
  function mutate(manifest: Manifest, ingredients: Ingredients): Manifest {
    const mutant = clone(manifest) as unknown as Record<string | number, unknown>
    const paths = pathsOf(mutant)
    const path = paths[ingredients.pathIndex % paths.length]!
    const parent = path.slice(0, -1).reduce<Record<string | number, unknown>>((node, k) => node[k] as Record<string | number, unknown>, mutant)
    const last = path[path.length - 1]!
    const current = parent[last]

    if (ingredients.structural === 'remove' && path[0] === 'state_snapshot') {
      if (Array.isArray(parent)) parent.splice(Number(last), 1)
      else delete parent[last]
      return mutant as unknown as Manifest
    }
    if (ingredients.structural === 'add' && current !== null && typeof current === 'object') {
      if (Array.isArray(current)) current.push(ingredients.json)
      else (current as Record<string, unknown>)[ingredients.key] = ingredients.json
      return mutant as unknown as Manifest
    }
    if (typeof current === 'string' && /^\d{4}-\d\d-\d\dT/.test(current)) parent[last] = shiftIso(current, ingredients.ms)
    else if (typeof current === 'string' && /^[0-9a-f]+$/.test(current)) {
      const at = ingredients.position % current.length
      parent[last] = current.slice(0, at) + ingredients.hexDigit + current.slice(at + 1)
    } else if (typeof current === 'string') parent[last] = current + ingredients.key
    else if (typeof current === 'number') parent[last] = current + ingredients.delta
    else if (typeof current === 'boolean') parent[last] = !current
    else if (current === null) parent[last] = 'cd'.repeat(16)
    else parent[last] = ingredients.json
    return mutant as unknown as Manifest
  }

  const ingredients: fc.Arbitrary<Ingredients> = fc.record({
    pathIndex: fc.nat(),
    position: fc.nat(),
    hexDigit: fc.constantFrom(...HEX.split('')),
    delta: fc.oneof(fc.integer({ min: -3, max: 3 }), fc.double({ min: -1, max: 1, noNaN: true })),
    ms: fc.integer({ min: -86_400_000, max: 86_400_000 }),
    key: fc.string({ minLength: 1, maxLength: 6 }),
    json: fc.jsonValue({ maxDepth: 2 }),
    structural: fc.constantFrom('change' as const, 'change' as const, 'add' as const, 'remove' as const),
  })

  it('refuses every mutant that differs from the signed manifest, at the wire schema or at the signature check', () => {
    const { warden } = setup()
    const child = childManifest(warden)
    const root = warden.admission.issueRoot({ state_snapshot: snapshot })
    let reachedDomain = 0
    let refusedBySchema = 0

    fc.assert(
      fc.property(fc.constantFrom(child, root), ingredients, (base, recipe) => {
        const mutant = mutate(base, recipe)
        fc.pre(canonicalJson(mutant) !== canonicalJson(base))
        // What the HTTP edge does first: a mutant the wire schema refuses never reaches the domain.
        const parsed = ManifestSchema.safeParse(mutant)
        if (!parsed.success) {
          refusedBySchema++
          return
        }
        reachedDomain++
        const seqBefore = auditRecords(warden).length
        let thrown: unknown
        try {
          warden.admission.register(parsed.data)
        } catch (error) {
          thrown = error
        }
        expect(thrown, `mutant registered: ${JSON.stringify(mutant)}`).toBeInstanceOf(DomainError)
        expect(['invalid_signature', 'unknown_key']).toContain((thrown as DomainError).code)
        // Attacker-controlled: no audit record of its own (SPEC §7).
        expect(auditRecords(warden).length).toBe(seqBefore)
      }),
      { numRuns: 400 },
    )

    // The property exercised the signature check, not only the schema.
    expect(reachedDomain).toBeGreaterThan(200)
    expect(refusedBySchema).toBeGreaterThan(0)
    expect(tableCount(warden, 'workers')).toBe(1)
    expect(warden.admission.register(child).worker.status).toBe('active')
    expect(warden.admission.register(root).worker.status).toBe('active')
    expect(warden.queries.verifyAudit().ok).toBe(true)
  })
})
