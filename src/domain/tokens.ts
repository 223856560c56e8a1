// Bearer tokens: random, shown once, stored and compared only as SHA-256 digests.
import { hash, randomBytes, timingSafeEqual } from 'node:crypto'

export function generateToken(): string {
  return randomBytes(32).toString('base64url')
}

/** One-shot: no Hash object per call (this runs on every authenticated request). */
export function hashToken(token: string): Buffer {
  return hash('sha256', token, 'buffer')
}

/** Constant-time: both sides are fixed-length digests, whatever the caller sent. */
export function tokenMatches(presented: string, storedHash: Buffer): boolean {
  const digest = hashToken(presented)
  return digest.length === storedHash.length && timingSafeEqual(digest, storedHash)
}

export function newWorkerId(): string {
  return randomBytes(16).toString('hex')
}
