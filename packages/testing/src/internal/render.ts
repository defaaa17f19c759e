/**
 * What one request gets, decided and serialized before anything is written: an error (a `Status`
 * fault, an unreadable body, a rejected prefill), a JSON completion, or a stream's frames. In
 * fast mode the server caches the result per behavior and body.
 */
import type { Behavior } from "./behavior.js"
import * as Text from "./mockText.js"
import { defaultMessage, type Frames, type Wire } from "./wire.js"

export type Rendered =
  | { readonly _tag: "Error"; readonly status: number; readonly body: Buffer }
  | { readonly _tag: "Json"; readonly body: Buffer }
  | { readonly _tag: "Stream"; readonly frames: Frames }

let counter = 0
let created = 1_732_000_000

const error = (wire: Wire, status: number, message: string): Rendered => ({ _tag: "Error", status, body: wire.errorBody(status, message) })

export const render = (wire: Wire, body: any, behavior: Behavior, words: number): Rendered => {
  if (body === undefined || body === null || typeof body !== "object") {
    return error(wire, 400, "We could not parse the JSON body of your request.")
  }
  const fault = behavior.fault
  if (fault?._tag === "Status" && fault.status >= 400) return error(wire, fault.status, fault.message ?? defaultMessage(fault.status))
  const messages: ReadonlyArray<Text.WireMessage> | undefined = Array.isArray(body.messages) ? body.messages : undefined
  const continuation = behavior.continuation
  if (continuation?._tag === "RejectPrefill" && messages?.[messages.length - 1]?.role === "assistant") {
    return error(wire, 400, "This model does not support assistant message prefill. The conversation must end with a user message.")
  }
  const planned = Text.plan(messages, behavior.words ?? words, {
    overlap: continuation?._tag === "Overlap" ? continuation.chars : undefined,
    restart: continuation?._tag === "Restart",
    text: behavior.text
  })
  const tool = behavior.toolCall === true ? Text.toolArguments(Text.seedOf(messages)) : undefined
  let promptTokens = 1
  for (const m of messages ?? []) promptTokens += Math.ceil(Text.contentText(m?.content as never).length / 4)
  const answer = {
    id: `${wire.idPrefix}${++counter}`,
    created: created++,
    model: behavior.model ?? (typeof body.model === "string" ? body.model : "mock-model"),
    text: planned.text,
    pieces: tool !== undefined ? tool.pieces : Text.chunks(planned.text),
    tool: tool?.name,
    promptTokens,
    includeUsage: body.stream_options?.include_usage === true
  }
  return body.stream === true ? { _tag: "Stream", frames: wire.frames(answer) } : { _tag: "Json", body: wire.completion(answer) }
}
