import type { RequestLimits } from "../ChatCompletion.js"

/**
 * The fields the request and each role's message declare; any other field is unknown and counts
 * against `RequestLimits.maxUnknownFieldChars`.
 *
 * @internal
 */
export interface KnownFields {
  readonly request: ReadonlySet<string>
  readonly messageByRole: ReadonlyMap<string, ReadonlySet<string>>
}

/**
 * The `KnownFields` of a request schema and its message schemas, read from the schemas
 * themselves so that a field added to a schema is known here at once.
 *
 * @internal
 */
export const knownFields = (
  request: { readonly fields: object },
  messages: ReadonlyArray<{ readonly fields: { readonly role: { readonly literals: ReadonlyArray<string> } } }>
): KnownFields => ({
  request: new Set(Object.keys(request.fields)),
  messageByRole: new Map(messages.flatMap((m) => {
    const keys: ReadonlySet<string> = new Set(Object.keys(m.fields))
    return m.fields.role.literals.map((role) => [role, keys] as const)
  }))
})

// Iterative, so that the check itself cannot overflow the stack it protects. Arrays are read by
// index, not iterated: an array without a prototype (not from `JSON.parse`, but a caller's
// value) has no iterator, and the check must answer for it rather than throw.
const depthExceeds = (input: unknown, maxDepth: number): boolean => {
  const stack: Array<unknown> = [input]
  const depths: Array<number> = [1]
  while (stack.length > 0) {
    const value = stack.pop()
    const depth = depths.pop()!
    if (value === null || typeof value !== "object") continue
    if (depth > maxDepth) return true
    const children: ArrayLike<unknown> = Array.isArray(value) ? value : Object.values(value)
    for (let i = 0; i < children.length; i++) {
      const child = children[i]
      if (child !== null && typeof child === "object") {
        stack.push(child)
        depths.push(depth + 1)
      }
    }
  }
  return false
}

const unknownChars = (object: Record<string, unknown>, known: ReadonlySet<string> | undefined): number => {
  let total = 0
  for (const key in object) {
    if (known?.has(key)) continue
    total += key.length + (JSON.stringify(object[key])?.length ?? 0)
  }
  return total
}

/**
 * Why a parsed body is beyond `limits` (too deep, or too many characters in unknown fields), or
 * `undefined` when it is within them.
 *
 * @internal
 */
export const limitProblem = (input: unknown, limits: RequestLimits, known: KnownFields): string | undefined => {
  if (depthExceeds(input, limits.maxDepth)) return `the body is nested deeper than ${limits.maxDepth} levels`
  if (input === null || typeof input !== "object" || Array.isArray(input)) return undefined
  const request = input as Record<string, unknown>
  let total = unknownChars(request, known.request)
  const messages = request.messages
  if (Array.isArray(messages)) {
    for (let i = 0; i < messages.length; i++) {
      const message: unknown = messages[i]
      if (message !== null && typeof message === "object" && !Array.isArray(message)) {
        const m = message as Record<string, unknown>
        total += unknownChars(m, known.messageByRole.get(typeof m.role === "string" ? m.role : ""))
      }
    }
  }
  return total > limits.maxUnknownFieldChars
    ? `unknown fields take ${total} characters, more than the ${limits.maxUnknownFieldChars} allowed`
    : undefined
}
