import type { ChatRequest } from "../ChatCompletion.js"

/**
 * How deep a request `plainRequest` accepts can be: the body (1), `messages` (2), a message (3),
 * its `tool_calls` (4), a tool call (5) and its `function` (6).
 *
 * @internal
 */
export const plainRequestDepth = 6

// What `JSON.parse` makes. Anything else (a class instance, a null-prototype object) goes to the
// Schema, whose copy would not be the same kind of object as the input.
const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype

const isPlainArray = (value: unknown): value is ReadonlyArray<unknown> =>
  Array.isArray(value) && Object.getPrototypeOf(value) === Array.prototype

// Written as the Schema's filters are, so that NaN, ±Infinity and -0 fall out the same way:
// `Schema.between` is `a >= min && a <= max` (NaN fails both), `Schema.Int` is
// `Number.isSafeInteger`, `Schema.positive` is `a > 0` (-0 fails).
const isBetween = (value: unknown, min: number, max: number): boolean =>
  typeof value === "number" && value >= min && value <= max

const isPositiveInt = (value: unknown): boolean => Number.isSafeInteger(value) && (value as number) > 0

// `value == null` below stands for `optionalNullable` (absent, `undefined` or `null`), and
// `value === undefined` for `Schema.optional`: the Schema accepts a present `undefined` for an
// optional field and keeps it, so its result still equals the input.
const isStringArray = (value: unknown): boolean => {
  if (!isPlainArray(value)) return false
  for (let i = 0; i < value.length; i++) if (typeof value[i] !== "string") return false
  return true
}

const isStreamOptions = (value: unknown): boolean => {
  if (!isPlainObject(value)) return false
  for (const key in value) {
    if (key !== "include_usage") return false
    const includeUsage = value[key]
    if (includeUsage !== undefined && typeof includeUsage !== "boolean") return false
  }
  return true
}

const isFunctionCall = (value: unknown): boolean => {
  if (!isPlainObject(value)) return false
  let required = 2
  for (const key in value) {
    if ((key !== "name" && key !== "arguments") || typeof value[key] !== "string") return false
    required--
  }
  return required === 0
}

const isToolCall = (value: unknown): boolean => {
  if (!isPlainObject(value)) return false
  let required = 3
  for (const key in value) {
    const field = value[key]
    switch (key) {
      case "id":
        if (typeof field !== "string") return false
        break
      case "type":
        if (field !== "function") return false
        break
      case "function":
        if (!isFunctionCall(field)) return false
        break
      default:
        return false
    }
    required--
  }
  return required === 0
}

const isToolCalls = (value: unknown): boolean => {
  if (!isPlainArray(value)) return false
  for (let i = 0; i < value.length; i++) if (!isToolCall(value[i])) return false
  return true
}

const isMessageField = (role: string, key: string, value: unknown): boolean => {
  switch (key) {
    case "role":
      return true
    case "content":
      return typeof value === "string" || (role === "assistant" && value == null)
    case "name":
      return role !== "tool" && (value === undefined || typeof value === "string")
    case "tool_call_id":
      return role === "tool" && typeof value === "string"
    case "refusal":
      return role === "assistant" && (value == null || typeof value === "string")
    case "tool_calls":
      return role === "assistant" && (value === undefined || isToolCalls(value))
    default:
      return false
  }
}

const isMessage = (value: unknown): boolean => {
  if (!isPlainObject(value)) return false
  const role = value.role
  // The fields each role requires: role and content, and a tool result's tool_call_id; an
  // assistant message may have neither content nor tool calls.
  let required: number
  switch (role) {
    case "system":
    case "developer":
    case "user":
      required = 2
      break
    case "tool":
      required = 3
      break
    case "assistant":
      required = 1
      break
    default:
      return false
  }
  for (const key in value) {
    if (!isMessageField(role, key, value[key])) return false
    if (key === "role" || key === "tool_call_id" || (key === "content" && role !== "assistant")) required--
  }
  return required === 0
}

const isMessages = (value: unknown): boolean => {
  if (!isPlainArray(value) || value.length === 0) return false
  for (let i = 0; i < value.length; i++) if (!isMessage(value[i])) return false
  return true
}

const isRequestField = (key: string, value: unknown): boolean => {
  switch (key) {
    case "model":
      return typeof value === "string" && value.length > 0
    case "messages":
      return isMessages(value)
    case "stream":
    case "logprobs":
      return value == null || typeof value === "boolean"
    case "stream_options":
      return value == null || isStreamOptions(value)
    case "temperature":
      return value == null || isBetween(value, 0, 2)
    case "top_p":
      return value == null || isBetween(value, 0, 1)
    case "presence_penalty":
    case "frequency_penalty":
      return value == null || isBetween(value, -2, 2)
    case "n":
    case "max_tokens":
    case "max_completion_tokens":
      return value == null || isPositiveInt(value)
    case "seed":
      return value == null || Number.isSafeInteger(value)
    case "top_logprobs":
      return value == null || (Number.isSafeInteger(value) && isBetween(value, 0, 20))
    case "stop":
      return value == null || typeof value === "string" || isStringArray(value)
    case "user":
      return value === undefined || typeof value === "string"
    case "parallel_tool_calls":
      return value === undefined || typeof value === "boolean"
    default:
      // Unknown fields, and the known ones whose values nest further (tools, tool_choice,
      // response_format), are the Schema's.
      return false
  }
}

/**
 * The input itself, typed as a `ChatRequest`, when it is a request of the common shape — text
 * messages (assistant ones with tool calls too) and the scalar options, nothing else — whose
 * every field the `ChatRequest` Schema would accept as it is; otherwise `undefined`, and the
 * caller decodes it with the Schema. It only reads properties: no copy, nothing allocated, and
 * a Schema decode of an accepted input succeeds with a value equal to it.
 *
 * @internal
 */
export const plainRequest = (input: unknown): ChatRequest | undefined => {
  if (!isPlainObject(input)) return undefined
  let required = 2
  for (const key in input) {
    if (!isRequestField(key, input[key])) return undefined
    if (key === "model" || key === "messages") required--
  }
  return required === 0 ? (input as unknown as ChatRequest) : undefined
}
