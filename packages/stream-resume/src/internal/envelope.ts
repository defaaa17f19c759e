/**
 * The client-facing envelope: one id, `created` and model for the whole stream, whatever the
 * attempts below were called, plus the chunks only stream-resume writes (seam markers, the
 * released tool call, the final chunk and the summed usage).
 */
import type { ChatCompletion } from "@breakwater/core"

type Chunk = ChatCompletion.ChatCompletionChunk
type Choice = Chunk["choices"][number]
type Delta = Choice["delta"]
type Usage = ChatCompletion.Usage

/** The extension field Breakwater adds to chunks (standard clients ignore unknown fields). */
export const EXTENSION = "breakwater"

/** The envelope of the client's stream: the first delivered attempt's. */
export interface Envelope {
  readonly id: string
  readonly created: number
  readonly model: string
}

export const envelopeOf = (chunk: Chunk): Envelope => ({ id: chunk.id, created: chunk.created, model: chunk.model })

/** A chunk in the envelope with one choice (index 0). */
export const choiceChunk = (env: Envelope, delta: Delta, finish: string | null, extra?: Record<string, unknown>): Chunk => {
  const chunk: Record<string, unknown> = {
    id: env.id,
    object: "chat.completion.chunk",
    created: env.created,
    model: env.model,
    choices: [{ index: 0, delta, finish_reason: finish }]
  }
  if (extra !== undefined) Object.assign(chunk, extra)
  return chunk as Chunk
}

/** A chunk of a later attempt, re-addressed to the envelope (choice index 0, `delta` replaced). */
export const readdress = (env: Envelope, chunk: Chunk, choice: Choice, delta: Delta, extra?: Record<string, unknown>): Chunk => {
  const out: Record<string, unknown> = { ...chunk, id: env.id, created: env.created, model: env.model, choices: [{ ...choice, index: 0, delta }] }
  if (extra !== undefined) Object.assign(out, extra)
  return out as Chunk
}

/**
 * The seam marker: a choice-less, usage-less chunk in the envelope with
 * `{ breakwater: { seam: n } }` (n counts seams from 1). It is a heartbeat to anything that does
 * not know it (`ChatCompletion.isHeartbeat` is true), so it never reaches a client as data.
 */
export const seamMarker = (env: Envelope, seam: number): Chunk =>
  ({ id: env.id, object: "chat.completion.chunk", created: env.created, model: env.model, choices: [], [EXTENSION]: { seam } }) as Chunk

export const isSeamMarker = (chunk: Chunk): boolean => {
  if (chunk.choices.length !== 0 || chunk.usage != null) return false
  const ext = (chunk as { readonly [EXTENSION]?: unknown })[EXTENSION]
  return typeof ext === "object" && ext !== null && typeof (ext as { readonly seam?: unknown }).seam === "number"
}

/** The usage-only chunk (no choices) in the envelope. */
export const usageChunk = (env: Envelope, source: Chunk, usage: Usage, extra?: Record<string, unknown>): Chunk => {
  const out: Record<string, unknown> = { ...source, id: env.id, created: env.created, model: env.model, usage }
  if (extra !== undefined) Object.assign(out, extra)
  return out as Chunk
}

/**
 * The token estimate used where no upstream count exists (a broken attempt never reports
 * usage): one token per 4 UTF-16 characters, rounded up — OpenAI's rule of thumb for English.
 */
export const estimateTokens = (chars: number): number => Math.ceil(chars / 4)

/** The characters a request sends as prompt (text parts only), for the estimate above. */
export const promptChars = (request: ChatCompletion.ChatRequest, partial: string | undefined): number => {
  let n = partial === undefined ? 0 : partial.length
  for (const message of request.messages) {
    const content = message.content
    if (typeof content === "string") n += content.length
    else if (content != null) for (const part of content) if (part.type === "text") n += (part as { readonly text: string }).text.length
  }
  return n
}

/** A tool call assembled from its deltas. */
export interface PendingCall {
  readonly index: number
  id: string | undefined
  name: string
  args: string
}

/** The delta that releases a whole tool call at once (id, name and complete arguments). */
export const callDelta = (call: PendingCall): Delta => ({
  tool_calls: [{
    index: call.index,
    ...(call.id === undefined ? {} : { id: call.id }),
    type: "function",
    function: { name: call.name, arguments: call.args }
  }]
})
