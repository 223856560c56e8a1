// The JSON body parser refuses values nested LIMITS.jsonDepth deep; bodies with few brackets skip
// the walk. The shortcut must never let a too-deep body through.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { fewBrackets, nestedBeyond } from '../../src/app.js'
import { LIMITS } from '../../src/schemas/index.js'

const nest = (depth: number, leaf: unknown = 1): unknown => (depth === 0 ? leaf : { a: nest(depth - 1, leaf) })

describe('JSON nesting limit', () => {
  it('refuses a value exactly at the limit and accepts one level less, with or without the shortcut', () => {
    const atLimit = JSON.stringify(nest(LIMITS.jsonDepth, {}))
    const below = JSON.stringify(nest(LIMITS.jsonDepth - 1, {}))
    expect(fewBrackets(atLimit, LIMITS.jsonDepth)).toBe(false)
    expect(nestedBeyond(JSON.parse(atLimit), LIMITS.jsonDepth)).not.toBeNull()
    expect(fewBrackets(below, LIMITS.jsonDepth)).toBe(true)
    expect(nestedBeyond(JSON.parse(below), LIMITS.jsonDepth)).toBeNull()
  })

  it('takes the shortcut only for bodies the walk accepts', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 40 }), fc.integer({ min: 1, max: 40 }), (value, limit) => {
        const text = JSON.stringify({ v: value })
        if (fewBrackets(text, limit)) expect(nestedBeyond(JSON.parse(text) as object, limit)).toBeNull()
      }),
      { numRuns: 500 },
    )
  })
})
