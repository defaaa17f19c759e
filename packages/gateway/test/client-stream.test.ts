import { ChatCompletion } from "@breakwater/core"
import { ClientStream } from "@breakwater/gateway"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"

const base = { id: "c1", object: "chat.completion.chunk" as const, created: 1, model: "m" }
const role: ChatCompletion.ChatCompletionChunk = { ...base, choices: [{ index: 0, delta: { role: "assistant" }, finish_reason: null }] }
const text = (content: string): ChatCompletion.ChatCompletionChunk => ({ ...base, choices: [{ index: 0, delta: { content }, finish_reason: null }] })
const seam = { ...base, choices: [], breakwater: { seam: 1 } } as unknown as ChatCompletion.ChatCompletionChunk

const harness = (events: boolean) => {
  const wire: Array<string> = []
  const recorded: Array<[number, string]> = []
  const writer = ClientStream.make({
    includeUsage: false,
    sink: { commit: (held) => void wire.push(`<commit>${held}`), write: (f) => Effect.sync(() => void wire.push(f)) },
    events: events
      ? { streamId: "s", retryMs: 2000, record: (seq, frame) => Effect.sync(() => void recorded.push([seq, frame])) }
      : undefined
  })
  return { wire, recorded, writer }
}

describe("ClientStream", () => {
  it.effect("journaled: ids on every event, a retry hint at commit, each event recorded before it is written", () =>
    Effect.gen(function*() {
      const { recorded, wire, writer } = harness(true)
      yield* writer.onChunk(role)
      expect(wire).toEqual([])
      expect(recorded.map(([seq]) => seq)).toEqual([1])
      yield* writer.onChunk(text("Hi"))
      yield* writer.onChunk(ChatCompletion.heartbeat("c1", "m", 1))
      yield* writer.onChunk(seam)
      yield* writer.onChunk(text(" there"))
      const end = writer.terminal("[DONE]")
      expect(end).toEqual({ seq: 4, frame: "id: s:4\ndata: [DONE]\n\n" })
      expect(wire[0]).toBe(`<commit>retry: 2000\n\nid: s:1\ndata: ${JSON.stringify(role)}\n\n`)
      expect(wire[1]).toBe(`id: s:2\ndata: ${JSON.stringify(text("Hi"))}\n\n`)
      // The keep-alive has no id and is not recorded; the seam comment travels with the next event.
      expect(wire[2]).toBe(ClientStream.keepAlive)
      expect(wire[3]).toBe(`${ClientStream.resumedComment}id: s:3\ndata: ${JSON.stringify(text(" there"))}\n\n`)
      expect(recorded.map(([, f]) => f).join("")).toBe(
        wire.join("").replace("<commit>retry: 2000\n\n", "").replace(ClientStream.keepAlive, "")
      )
    }))

  it.effect("not journaled: the frames are unchanged (no ids, no retry hint, seam comment as it comes)", () =>
    Effect.gen(function*() {
      const { recorded, wire, writer } = harness(false)
      yield* writer.onChunk(role)
      yield* writer.onChunk(text("Hi"))
      yield* writer.onChunk(seam)
      yield* writer.onChunk(text("!"))
      expect(writer.terminal("[DONE]").frame).toBe(ClientStream.done)
      expect(wire).toEqual([
        `<commit>data: ${JSON.stringify(role)}\n\n`,
        `data: ${JSON.stringify(text("Hi"))}\n\n`,
        ClientStream.resumedComment,
        `data: ${JSON.stringify(text("!"))}\n\n`
      ])
      expect(recorded).toEqual([])
    }))
})
