// Turns zod issues into the one-line messages operators read: `max_depth must be >= 0, got -1`.
import type { z } from 'zod'

export function describeIssue(issue: z.core.$ZodIssue, prefix = ''): string {
  const path = [prefix, ...issue.path.map(String)].filter(Boolean).join('.') || 'body'
  const input = 'input' in issue ? (issue as { input?: unknown }).input : undefined
  const got = input === undefined ? '' : `, got ${show(input)}`
  switch (issue.code) {
    case 'too_small':
      if (issue.origin === 'number' || issue.origin === 'int' || issue.origin === 'bigint') {
        return `${path} must be ${issue.inclusive ? '>=' : '>'} ${issue.minimum}${got}`
      }
      return `${path} must have at least ${issue.minimum} ${unit(issue.origin)}`
    case 'too_big':
      if (issue.origin === 'number' || issue.origin === 'int' || issue.origin === 'bigint') {
        return `${path} must be ${issue.inclusive ? '<=' : '<'} ${issue.maximum}${got}`
      }
      return `${path} must have at most ${issue.maximum} ${unit(issue.origin)}`
    case 'invalid_type':
      return input === undefined ? `${path} is required` : `${path} must be ${issue.expected}${got}`
    case 'unrecognized_keys':
      return `${path === 'body' ? 'body' : path} has unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}`
    case 'invalid_value':
      return `${path} must be one of ${issue.values.map(show).join(', ')}${got}`
    default:
      return `${path} ${issue.message}`
  }
}

export function describeIssues(issues: readonly z.core.$ZodIssue[], prefix = ''): string {
  return issues.map((issue) => describeIssue(issue, prefix)).join('; ')
}

function unit(origin: string): string {
  return origin === 'string' ? 'characters' : origin === 'array' || origin === 'set' ? 'items' : 'entries'
}

function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value)
  return text.length > 60 ? text.slice(0, 57) + '...' : text
}
