import { ChatCompletion, RequestContext } from "@breakwater/core"
import { ClientApi, ClientStream } from "@breakwater/gateway"
import { describe, expect, it } from "@effect/vitest"

const base = { id: "c1", object: "chat.completion.chunk" as const, created: 1, model: "m" }
const role: ChatCompletion.ChatCompletionChunk = { ...base, choices: [{ index: 0, delta: { role: "assistant" }, finish_reason: null }] }
const text = (content: string): ChatCompletion.ChatCompletionChunk => ({ ...base, choices: [{ index: 0, delta: { content }, finish_reason: null }] })
const seam = { ...base, choices: [], breakwater: { seam: 1 } } as unknown as ChatCompletion.ChatCompletionChunk

const harness = (events: boolean) => {
  const wire: Array<string> = []
  const recorded: Array<[number, string]> = []
  const writer = ClientStream.make({
    includeUsage: false,
    sink: {
      commit: (held) => void wire.push(`<commit>${held}`),
      write: (f) => {
        wire.push(f)
        return true
      }
    },
    events: events
      ? { streamId: "s", retryMs: 2000, record: (first, frames) => frames.forEach((frame, i) => void recorded.push([first + i, frame])) }
      : undefined
  })
  return { wire, recorded, writer }
}

describe("ClientStream", () => {
  it("journaled: ids on every event, a retry hint at commit, each event recorded before it is written", () =>
    {
      const { recorded, wire, writer } = harness(true)
      writer.onChunks([role])
      expect(wire).toEqual([])
      expect(recorded.map(([seq]) => seq)).toEqual([1])
      writer.onChunks([text("Hi")])
      writer.onChunks([ChatCompletion.heartbeat("c1", "m", 1)])
      writer.onChunks([seam])
      writer.onChunks([text(" there")])
      const end = writer.terminal("[DONE]")
      expect(end).toEqual({ seq: 4, frame: "id: s:4\ndata: [DONE]\n\n" })
      // Committed inside a batch: the held-back frames lead that batch's write.
      expect(wire[0]).toBe("<commit>")
      expect(wire[1]).toBe(`retry: 2000\n\nid: s:1\ndata: ${JSON.stringify(role)}\n\nid: s:2\ndata: ${JSON.stringify(text("Hi"))}\n\n`)
      // The keep-alive has no id and is not recorded; the seam comment travels with the next event.
      expect(wire[2]).toBe(ClientStream.keepAlive)
      expect(wire[3]).toBe(`${ClientStream.resumedComment}id: s:3\ndata: ${JSON.stringify(text(" there"))}\n\n`)
      expect(recorded.map(([, f]) => f).join("")).toBe(
        wire.join("").replace("<commit>retry: 2000\n\n", "").replace(ClientStream.keepAlive, "")
      )
    })

  it("not journaled: the frames are unchanged (no ids, no retry hint, seam comment as it comes)", () =>
    {
      const { recorded, wire, writer } = harness(false)
      writer.onChunks([role])
      writer.onChunks([text("Hi")])
      writer.onChunks([seam])
      writer.onChunks([text("!")])
      expect(writer.terminal("[DONE]").frame).toBe(ClientStream.done)
      expect(wire).toEqual([
        "<commit>",
        `data: ${JSON.stringify(role)}\n\ndata: ${JSON.stringify(text("Hi"))}\n\n`,
        ClientStream.resumedComment,
        `data: ${JSON.stringify(text("!"))}\n\n`
      ])
      expect(recorded).toEqual([])
    })

  it("the chunks of one upstream read leave in one write and are recorded as one batch, in order", () => {
    const { recorded, wire, writer } = harness(true)
    const records: Array<number> = []
    const batched = ClientStream.make({
      includeUsage: false,
      sink: { commit: (held) => void wire.push(`<commit>${held}`), write: (f) => (wire.push(f), true) },
      events: { streamId: "s", retryMs: 0, record: (first, frames) => frames.forEach((frame, i) => (records.push(first + i), void recorded.push([first + i, frame]))) }
    })
    expect(batched.onChunks([role, text("a"), text("b"), ChatCompletion.heartbeat("c1", "m", 1), text("c")])).toBe(true)
    // The commit sends the headers only; what was held back (the role delta) leads the batch's one write.
    expect(wire).toHaveLength(2)
    expect(wire[0]).toBe("<commit>")
    expect(wire[1]).toBe(
      `retry: 0\n\nid: s:1\ndata: ${JSON.stringify(role)}\n\n` +
        ["a", "b"].map((t, i) => `id: s:${i + 2}\ndata: ${JSON.stringify(text(t))}\n\n`).join("") + ClientStream.keepAlive +
        `id: s:4\ndata: ${JSON.stringify(text("c"))}\n\n`
    )
    expect(records).toEqual([1, 2, 3, 4])
    void writer
  })

  it("a large journaled write goes out as bytes the journal is given too: the same text, its frames after the retry hint", () => {
    const decoder = new TextDecoder()
    const run = (chunks: ReadonlyArray<ReadonlyArray<ChatCompletion.ChatCompletionChunk>>, bytesSink: boolean) => {
      const wire: Array<string> = []
      const kinds: Array<"text" | "bytes"> = []
      const records: Array<{ first: number; frames: ReadonlyArray<string>; bytes: Uint8Array | undefined; at: number | undefined }> = []
      const writer = ClientStream.make({
        includeUsage: false,
        sink: {
          commit: (held) => void wire.push(held),
          write: (f) => (kinds.push("text"), wire.push(f), true),
          ...(bytesSink ? { writeBytes: (b: Uint8Array) => (kinds.push("bytes"), wire.push(decoder.decode(b)), true) } : {})
        },
        events: { streamId: "s", retryMs: 1500, record: (first, frames, bytes, at) => void records.push({ first, frames, bytes, at }) }
      })
      for (const batch of chunks) writer.onChunks(batch)
      return { wire, kinds, records }
    }
    // Each 120 characters or so: one read of 60 (the whole stream at once), then one of 5, then
    // one of 60 with a keep-alive among them.
    const long = (n: number, from: number) => Array.from({ length: n }, (_, i) => text(`word ${from + i} é ☃ 😀 ` + "x".repeat(40)))
    const reads = [[role, ...long(60, 0)], long(5, 60), [...long(30, 65), ChatCompletion.heartbeat("c1", "m", 1), ...long(30, 95)]]
    const asText = run(reads, false)
    const asBytes = run(reads, true)
    // The client gets the same text either way; only the large read without a keep-alive went as bytes.
    expect(asBytes.wire).toEqual(asText.wire)
    expect(asBytes.kinds).toEqual(["bytes", "text", "text"])
    expect(asText.kinds).toEqual(["text", "text", "text"])
    // The journal gets the same frames, and with the bytes, where they start: after the retry hint.
    expect(asBytes.records.map((r) => [r.first, r.frames])).toEqual(asText.records.map((r) => [r.first, r.frames]))
    const first = asBytes.records[0]!
    expect(first.at).toBe("retry: 1500\n\n".length)
    expect(decoder.decode(first.bytes).slice(first.at)).toBe(first.frames.join(""))
    expect(decoder.decode(first.bytes)).toBe(asBytes.wire[1])
    expect(asBytes.records.slice(1).map((r) => r.bytes)).toEqual([undefined, undefined])
  })

  it("commits with the chunk that commits the stream (StreamCommit): a finish on any choice, never the role or usage", () => {
    const { wire, writer } = harness(false)
    const usage = { ...base, choices: [], usage: { prompt_tokens: 1, completion_tokens: 0, total_tokens: 1 } }
    writer.onChunks([role, { ...role, usage: usage.usage }])
    expect(writer.committed()).toBe(false)
    const second = { ...base, choices: [{ index: 0, delta: {}, finish_reason: null }, { index: 1, delta: {}, finish_reason: "stop" }] }
    writer.onChunks([second])
    expect(writer.committed()).toBe(true)
    expect(wire[0]).toBe("<commit>")
    expect(wire[1]!.startsWith(`data: ${JSON.stringify(role)}`)).toBe(true)
  })

  it("a commit outside a batch (the host's commit bound) carries what was held back itself", () => {
    const { wire, writer } = harness(false)
    writer.onChunks([role])
    expect(wire).toEqual([])
    writer.commit()
    expect(wire).toEqual([`<commit>data: ${JSON.stringify(role)}\n\n`])
    writer.onChunks([text("Hi")])
    expect(wire[1]).toBe(`data: ${JSON.stringify(text("Hi"))}\n\n`)
  })

  it("says when the transport is full, so the upstream is paused", () => {
    let full = false
    const wire: Array<string> = []
    const writer = ClientStream.make({ includeUsage: false, sink: { commit: () => {}, write: (f) => (wire.push(f), !full) } })
    let resumed = 0
    const resumers: Array<() => void> = []
    const sink = ClientStream.chunkSink(writer, (resume) => resumers.push(resume))
    sink.start({ abort: () => {}, resume: () => void resumed++ })
    expect(sink.push([text("a")])).toBe(true)
    full = true
    expect(sink.push([text("b")])).toBe(false)
    expect(resumers).toHaveLength(1)
    resumers[0]!()
    expect(resumed).toBe(1)
    expect(wire).toHaveLength(2)
  })

  it("ends a stream: [DONE] (committing first), an error event once committed, nothing before", () => {
    const error = ClientApi.badRequest("nope", "x")
    const fresh = harness(false)
    expect(ClientStream.end(fresh.writer, error, "r1")).toBeUndefined()
    expect(fresh.wire).toEqual([])
    expect(ClientStream.end(fresh.writer, undefined, "r1")?.frame).toBe(ClientStream.done)
    expect(fresh.wire).toEqual(["<commit>"])
    const journaled = harness(true)
    journaled.writer.onChunks([text("Hi")])
    expect(ClientStream.end(journaled.writer, error, "r2")).toEqual({ seq: 2, frame: `id: s:2\ndata: ${ClientApi.errorBody(error, "r2")}\n\n` })
  })

  it("names a streamed response's headers: SSE, the request id, the trace and the stream id when given", () => {
    const trace = { ...RequestContext.make().trace, attempts: 2, upstream: "primary" }
    expect(ClientStream.headers("r1", trace, "s1")).toEqual({
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      "x-accel-buffering": "no",
      "x-request-id": "r1",
      "x-breakwater-attempts": "2",
      "x-breakwater-upstream": "primary",
      "x-breakwater-stream-id": "s1"
    })
    expect(Object.keys(ClientStream.headers("r1", undefined, undefined))).not.toContain("x-breakwater-attempts")
  })
})
