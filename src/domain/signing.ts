// Manifest signatures: HMAC-SHA256 (hex) over the RFC 8785 canonical JSON of every field
// but the signature. Keys are named by a key_id derived from the key itself.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import canonicalize from 'canonicalize'
import type { Manifest, UnsignedManifest } from '../schemas/index.js'
import { DomainError } from './errors.js'

export function canonicalJson(value: unknown): string {
  const text = value === undefined || typeof value === 'symbol' || typeof value === 'function' ? undefined : canonical(value)
  if (text === undefined) throw new TypeError('value has no canonical JSON form')
  return text
}

/**
 * RFC 8785 for JSON values, as `canonicalize` writes it (a property test holds the two equal),
 * with arrays and objects joined once instead of concatenated element by element: the kill
 * switch's audit record names every worker it ended, a hundred thousand ids at scale.
 */
function canonical(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (value === null || typeof value !== 'object' || typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    return canonicalize(value) ?? 'null'
  }
  if (Array.isArray(value)) {
    // A list of strings (the kill switch's worker ids): JSON.stringify writes strings as RFC 8785 does.
    if (value.every((item) => typeof item === 'string')) return JSON.stringify(value)
    const parts = new Array<string>(value.length)
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i]
      parts[i] = item === undefined || typeof item === 'symbol' ? 'null' : canonical(item)
    }
    return `[${parts.join(',')}]`
  }
  const parts: string[] = []
  for (const key of Object.keys(value).sort()) {
    const item: unknown = (value as Record<string, unknown>)[key]
    if (item === undefined || typeof item === 'symbol') continue
    parts.push(`${JSON.stringify(key)}:${canonical(item)}`)
  }
  return `{${parts.join(',')}}`
}

export function keyIdFor(key: Buffer): string {
  return 'k1-' + createHash('sha256').update('warden-key-id:').update(key).digest('hex').slice(0, 16)
}

export interface Signer {
  readonly keyId: string
  sign(manifest: Omit<UnsignedManifest, 'key_id'>): Manifest
  /** Throws unknown_key or invalid_signature; returns normally only for an authentic manifest. */
  verify(manifest: Manifest): void
  /** Whether a manifest signed with `keyId` could still verify. */
  holds(keyId: string): boolean
  /**
   * The signature of a manifest this controller signed before, computed again (HMAC is
   * deterministic): a replay can answer the very same manifest without its signature ever having
   * been stored. Throws unknown_key when that key is no longer held.
   */
  signAgain(unsigned: UnsignedManifest): Manifest
}

/**
 * Signs with the current key and verifies with any key of the ring, so a key can be rotated
 * while manifests signed by the previous one are still outstanding.
 */
export function createSigner(current: Buffer, previous: Buffer[] = []): Signer {
  if (current.length < 32) throw new Error('the signing key must be at least 32 bytes')
  const ring = new Map<string, Buffer>()
  for (const key of [current, ...previous]) ring.set(keyIdFor(key), key)
  const keyId = keyIdFor(current)

  const mac = (key: Buffer, unsigned: UnsignedManifest): Buffer =>
    createHmac('sha256', key).update(canonicalJson(unsigned)).digest()

  return {
    keyId,
    holds: (id) => ring.has(id),
    sign(fields) {
      const unsigned: UnsignedManifest = { ...fields, key_id: keyId }
      return { ...unsigned, signature: mac(current, unsigned).toString('hex') }
    },
    signAgain(unsigned) {
      const key = ring.get(unsigned.key_id)
      if (key === undefined) {
        throw new DomainError('unknown_key', `manifest is signed with key ${unsigned.key_id}, which this controller no longer holds`)
      }
      return { ...unsigned, signature: mac(key, unsigned).toString('hex') }
    },
    verify(manifest) {
      const key = ring.get(manifest.key_id)
      if (key === undefined) {
        throw new DomainError('unknown_key', `manifest is signed with key ${manifest.key_id}, which this controller does not hold`)
      }
      const { signature, ...unsigned } = manifest
      const expected = mac(key, unsigned)
      const given = Buffer.from(signature, 'hex')
      // Buffer.from(…, 'hex') forgives case and trailing junk; a signature is exactly 64 lowercase hex.
      if (!/^[0-9a-f]{64}$/.test(signature) || !timingSafeEqual(given, expected)) {
        throw new DomainError('invalid_signature', 'manifest signature does not match its contents')
      }
    },
  }
}
