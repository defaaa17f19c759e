import Anthropic from "@anthropic-ai/sdk"
import { MockUpstream } from "@breakwater/testing"
import OpenAI from "openai"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"

const { Fault, ContinuationFault } = MockUpstream

let mock: MockUpstream.MockUpstream
let openai: OpenAI
let anthropic: Anthropic

beforeAll(async () => {
  mock = await MockUpstream.start({ words: 20 })
  openai = new OpenAI({ baseURL: mock.url, apiKey: "sk-mock", maxRetries: 0 })
  anthropic = new Anthropic({ baseURL: mock.origin, apiKey: "sk-ant-mock", maxRetries: 0 })
})
afterAll(async () => {
  await mock.stop()
})
beforeEach(() => mock.reset())

const ask = (content: string) => ({ model: "gpt-mock", messages: [{ role: "user" as const, content }] })

const collectOpenAi = async (stream: AsyncIterable<OpenAI.ChatCompletionChunk>) => {
  let text = ""
  let finish: string | null = null
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta.content ?? ""
    finish = chunk.choices[0]?.finish_reason ?? finish
  }
  return { text, finish }
}

describe("MockUpstream: OpenAI format", () => {
  it("answers deterministically, streaming and not, with multi-byte text", async () => {
    const whole = await openai.chat.completions.create(ask("hello"))
    expect(whole.choices[0]?.message.content).toBe(mock.textFor(ask("hello")))
    expect(mock.textFor(ask("hello"))).toMatch(/🌊/)
    expect(mock.textFor(ask("hello"))).not.toBe(mock.textFor(ask("other")))
    const streamed = await collectOpenAi(await openai.chat.completions.create({ ...ask("hello"), stream: true }))
    expect(streamed).toEqual({ text: mock.textFor(ask("hello")), finish: "stop" })
    expect(mock.requests.map((r) => r.path)).toEqual(["/v1/chat/completions", "/v1/chat/completions"])
    expect(mock.requests[0]?.headers.authorization).toBe("Bearer sk-mock")
  })

  it("sends the usage chunk when asked", async () => {
    let usage: OpenAI.CompletionUsage | undefined
    for await (const chunk of await openai.chat.completions.create({ ...ask("u"), stream: true, stream_options: { include_usage: true } })) {
      if (chunk.usage) usage = chunk.usage
    }
    expect(usage?.completion_tokens).toBeGreaterThan(0)
  })

  it("answers a scripted error status with the provider's error shape and headers", async () => {
    mock.script({ fault: Fault.Status({ status: 429 }), headers: { "retry-after": "7" } })
    const error = await openai.chat.completions.create(ask("x")).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(OpenAI.RateLimitError)
    expect((error as InstanceType<typeof OpenAI.APIError>).headers?.get("retry-after")).toBe("7")
    // The script is consumed: the next request is normal.
    expect((await openai.chat.completions.create(ask("x"))).choices[0]?.message.content).toBe(mock.textFor(ask("x")))
  })

  it("cuts a stream after n chunks: the client sees an error, not a complete stream", async () => {
    mock.script({ fault: Fault.Cut({ afterChunks: 3 }) })
    const stream = await openai.chat.completions.create({ ...ask("cut"), stream: true })
    const error = await collectOpenAi(stream).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(Error)
  })

  it("takes faults as plain tagged data too (a behavior sent as JSON, as the benchmark does over IPC)", async () => {
    const overTheWire: MockUpstream.Behavior = JSON.parse(JSON.stringify({ fault: Fault.Status({ status: 503, message: "down for now" }) }))
    expect(overTheWire).toEqual({ fault: { _tag: "Status", status: 503, message: "down for now" } })
    mock.script(overTheWire, { fault: { _tag: "Cut", afterChunks: 2 } })
    const error = await openai.chat.completions.create(ask("p")).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(OpenAI.InternalServerError)
    expect((error as InstanceType<typeof OpenAI.APIError>).message).toMatch(/down for now/)
    const cut = await collectOpenAi(await openai.chat.completions.create({ ...ask("p"), stream: true })).catch((e: unknown) => e)
    expect(cut).toBeInstanceOf(Error)
  })

  it("ends without the terminator, sends malformed frames and in-band errors on request", async () => {
    mock.script({ fault: Fault.NoTerminator() }, { fault: Fault.Malformed({ afterChunks: 2 }) }, { fault: Fault.ErrorEvent({ afterChunks: 2 }) })
    const raw = async () => {
      const res = await fetch(`${mock.url}/chat/completions`, { method: "POST", body: JSON.stringify({ ...ask("f"), stream: true }) })
      return res.text()
    }
    const noTerminator = await raw()
    expect(noTerminator).toMatch(/"finish_reason":"stop"/)
    expect(noTerminator).not.toMatch(/\[DONE\]/)
    const malformed = await raw()
    expect(malformed.split("\n\n").filter((f) => f.startsWith("data: ")).some((f) => {
      try {
        JSON.parse(f.slice(6))
        return false
      } catch {
        return true
      }
    })).toBe(true)
    expect(await raw()).toMatch(/data: \{"error":/)
  })

  it("splits frames inside multi-byte characters without changing the text", async () => {
    mock.script({ splitUtf8: true })
    const streamed = await collectOpenAi(await openai.chat.completions.create({ ...ask("utf"), stream: true }))
    expect(streamed.text).toBe(mock.textFor(ask("utf")))
  })

  it("streams a tool call whose arguments parse as JSON", async () => {
    mock.script({ toolCall: true })
    let args = ""
    let finish: string | null = null
    for await (const chunk of await openai.chat.completions.create({ ...ask("tool"), stream: true })) {
      args += chunk.choices[0]?.delta.tool_calls?.[0]?.function?.arguments ?? ""
      finish = chunk.choices[0]?.finish_reason ?? finish
    }
    expect(JSON.parse(args)).toMatchObject({ city: "Zürich" })
    expect(finish).toBe("tool_calls")
  })

  it("continues a partial answer: prefill, instruction, overlap, restart, rejected prefill", async () => {
    const full = mock.textFor(ask("go on"))
    const partial = full.slice(0, 30)
    const withPrefill = { ...ask("go on"), messages: [...ask("go on").messages, { role: "assistant" as const, content: partial }] }
    const rest = (await openai.chat.completions.create(withPrefill)).choices[0]?.message.content ?? ""
    expect(partial.trimEnd() + rest).toBe(full)
    const withInstruction = {
      ...ask("go on"),
      messages: [...ask("go on").messages, { role: "assistant" as const, content: partial }, { role: "user" as const, content: "continue" }]
    }
    expect((await openai.chat.completions.create(withInstruction)).choices[0]?.message.content).toBe(full.slice(30))
    mock.script({ continuation: ContinuationFault.Overlap({ chars: 5 }) }, { continuation: ContinuationFault.Restart() }, { continuation: ContinuationFault.RejectPrefill() })
    expect((await openai.chat.completions.create(withInstruction)).choices[0]?.message.content).toBe(full.slice(25))
    expect((await openai.chat.completions.create(withInstruction)).choices[0]?.message.content).toBe(full)
    const rejected = await openai.chat.completions.create(withPrefill).catch((e: unknown) => e)
    expect(rejected).toBeInstanceOf(OpenAI.BadRequestError)
  })

  it("refuses connections while stopped and serves again after restart on the same port", async () => {
    const port = mock.port
    await mock.stop()
    const refused = await fetch(`${mock.url}/models`).catch((e: unknown) => e)
    expect(refused).toBeInstanceOf(Error)
    await mock.restart()
    expect(mock.port).toBe(port)
    expect((await fetch(`${mock.url}/models`)).status).toBe(200)
  })

  it("stalls before headers until the client gives up, and counts open responses", async () => {
    mock.script({ fault: Fault.StallBeforeHeaders() })
    const controller = new AbortController()
    const pending = fetch(`${mock.url}/chat/completions`, { method: "POST", body: JSON.stringify(ask("s")), signal: controller.signal })
      .catch((e: unknown) => e)
    await mock.waitFor(1)
    expect(mock.openResponses).toBe(1)
    controller.abort()
    expect(await pending).toBeInstanceOf(Error)
  })

  it("applies chaos reproducibly from its seed", async () => {
    const outcomes = async () => {
      mock.reset()
      mock.chaos({ rate: 0.5, behaviors: [{ fault: Fault.Status({ status: 503 }) }], seed: 7 })
      const statuses: Array<number> = []
      for (let i = 0; i < 12; i++) {
        statuses.push((await fetch(`${mock.url}/chat/completions`, { method: "POST", body: JSON.stringify(ask("c")) })).status)
      }
      return statuses
    }
    const first = await outcomes()
    expect(first).toContain(503)
    expect(first).toContain(200)
    expect(await outcomes()).toEqual(first)
  })
})

describe("MockUpstream: Anthropic format", () => {
  it("answers messages streaming and not, with the same deterministic text", async () => {
    const params = { model: "claude-mock", max_tokens: 100, messages: [{ role: "user" as const, content: "hello" }] }
    const message = await anthropic.messages.create(params)
    expect(message.content[0]?.type === "text" && message.content[0].text).toBe(mock.textFor(params))
    let text = ""
    for await (const event of await anthropic.messages.create({ ...params, stream: true })) {
      if (event.type === "content_block_delta" && event.delta.type === "text_delta") text += event.delta.text
    }
    expect(text).toBe(mock.textFor(params))
    expect(mock.requests[0]?.path).toBe("/v1/messages")
  })

  it("maps 529 to overloaded_error and sends an in-band error event mid-stream", async () => {
    mock.script({ fault: Fault.Status({ status: 529 }) }, { fault: Fault.ErrorEvent({ afterChunks: 2 }) })
    const params = { model: "claude-mock", max_tokens: 100, messages: [{ role: "user" as const, content: "x" }] }
    const error = await anthropic.messages.create(params).catch((e: unknown) => e)
    expect((error as InstanceType<typeof Anthropic.APIError>).status).toBe(529)
    const res = await fetch(`${mock.origin}/v1/messages`, { method: "POST", body: JSON.stringify({ ...params, stream: true }) })
    expect(await res.text()).toMatch(/event: error\ndata: .*overloaded_error/)
  })
})

/** Reads a raw response frame by frame (frames end with a blank line), with arrival times. */
const rawFrames = async (path: string, body: unknown, signal?: AbortSignal) => {
  const started = Date.now()
  const res = await fetch(`${mock.origin}${path}`, { method: "POST", body: JSON.stringify(body), ...(signal ? { signal } : {}) })
  const headersAt = Date.now() - started
  const frames: Array<{ text: string; at: number }> = []
  const decoder = new TextDecoder()
  let buffer = ""
  const reader = res.body!.getReader()
  const next = async (): Promise<{ text: string; at: number } | undefined> => {
    for (;;) {
      const end = buffer.indexOf("\n\n")
      if (end >= 0) {
        const frame = { text: buffer.slice(0, end), at: Date.now() - started }
        buffer = buffer.slice(end + 2)
        frames.push(frame)
        return frame
      }
      const { done, value } = await reader.read()
      if (done) return undefined
      buffer += decoder.decode(value, { stream: true })
    }
  }
  const all = async () => {
    while (await next() !== undefined) { /* collect */ }
    return frames
  }
  return { res, headersAt, next, all, frames, cancel: () => reader.cancel() }
}

const chat = (content: string, extra: Record<string, unknown> = {}) => ({ ...ask(content), stream: true, ...extra })
const claude = (content: string) => ({ model: "claude-mock", max_tokens: 100, messages: [{ role: "user" as const, content }] })
const claudeStream = (content: string) => ({ ...claude(content), stream: true as const })
/** The rejection of a promise expected to fail (`undefined` if it succeeded). */
const rejection = (promise: Promise<unknown>): Promise<any> => promise.then(() => undefined, (e: unknown) => e)

describe("MockUpstream: wire format", () => {
  it("OpenAI: role delta first, one data frame per word, finish, usage chunk with no choices, [DONE]", async () => {
    const { all } = await rawFrames("/v1/chat/completions", chat("wire", { stream_options: { include_usage: true } }))
    const frames = (await all()).map((f) => f.text)
    expect(frames.at(-1)).toBe("data: [DONE]")
    const json = frames.slice(0, -1).map((f) => JSON.parse(f.replace(/^data: /, "")))
    for (const j of json) expect(j).toMatchObject({ id: json[0].id, object: "chat.completion.chunk", model: "gpt-mock" })
    expect(json[0].choices[0]).toMatchObject({ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null })
    expect(json.at(-2).choices[0]).toMatchObject({ delta: {}, finish_reason: "stop" })
    expect(json.at(-1)).toMatchObject({ choices: [], usage: { completion_tokens: json.length - 3 } })
    expect(json.slice(1, -2).map((j) => j.choices[0].delta.content).join("")).toBe(mock.textFor(ask("wire")))
  })

  it("Anthropic: message_start, block start, ping, text deltas, block stop, message_delta, message_stop", async () => {
    const { all } = await rawFrames("/v1/messages", claudeStream("wire"))
    const frames = await all()
    const events = frames.map((f) => f.text.split("\n")[0])
    expect(events.slice(0, 3)).toEqual(["event: message_start", "event: content_block_start", "event: ping"])
    expect(events.slice(-3)).toEqual(["event: content_block_stop", "event: message_delta", "event: message_stop"])
    for (const f of frames) {
      const [event, data] = f.text.split("\n")
      expect(JSON.parse(data!.slice(6)).type).toBe(event!.slice(7))
    }
  })

  it("lists models on GET /v1/models", async () => {
    const page = await openai.models.list()
    expect(page.data.map((m) => m.id)).toEqual(["mock-model"])
  })

  it("answers from the last user message, or the scripted text", async () => {
    const turns = { model: "m", messages: [{ role: "user" as const, content: "first" }, { role: "assistant" as const, content: "ok" }, { role: "user" as const, content: "second" }] }
    expect(mock.textFor(turns)).toBe(mock.textFor(ask("second")))
    expect((await openai.chat.completions.create(turns)).choices[0]?.message.content).toBe(mock.textFor(ask("second")))
    mock.script({ text: "exactly this, café" })
    expect((await collectOpenAi(await openai.chat.completions.create({ ...ask("t"), stream: true }))).text).toBe("exactly this, café")
  })
})

describe("MockUpstream: faults", () => {
  it("maps statuses to the SDKs' error classes, with the provider's error bodies and headers", async () => {
    mock.script({ fault: Fault.Status({ status: 401 }) }, { fault: Fault.Status({ status: 404 }) }, { fault: Fault.Status({ status: 500 }) }, { fault: Fault.Status({ status: 503 }), headers: { "retry-after-ms": "1500" } }, { fault: Fault.Status({ status: 400 }) })
    const errors = []
    for (let i = 0; i < 5; i++) errors.push(await rejection(openai.chat.completions.create(ask("e"))))
    expect(errors[0]).toBeInstanceOf(OpenAI.AuthenticationError)
    expect(errors[1]).toBeInstanceOf(OpenAI.NotFoundError)
    expect(errors[1]?.code).toBe("model_not_found")
    expect(errors[2]).toBeInstanceOf(OpenAI.InternalServerError)
    expect(errors[3]?.status).toBe(503)
    expect(errors[3]?.headers?.get("retry-after-ms")).toBe("1500")
    expect(errors[4]).toBeInstanceOf(OpenAI.BadRequestError)
    expect(errors[4]?.type).toBe("invalid_request_error")

    mock.script({ fault: Fault.Status({ status: 429 }), headers: { "retry-after": "3" } })
    const limited = await rejection(anthropic.messages.create(claude("e")))
    expect(limited).toBeInstanceOf(Anthropic.RateLimitError)
    expect(limited.headers?.get("retry-after")).toBe("3")
    expect(limited.error).toMatchObject({ type: "error", error: { type: "rate_limit_error" } })
  })

  it("ResetBeforeHeaders: the connection is destroyed with no response; the attempt is recorded", async () => {
    mock.script({ fault: Fault.ResetBeforeHeaders() }, { fault: Fault.ResetBeforeHeaders() })
    expect(await openai.chat.completions.create(ask("r")).catch((e: unknown) => e)).toBeInstanceOf(OpenAI.APIConnectionError)
    expect(await anthropic.messages.create(claude("r")).catch((e: unknown) => e)).toBeInstanceOf(Anthropic.APIConnectionError)
    expect(mock.requests).toHaveLength(2)
    expect(mock.requests.map((r) => r.clientAborted)).toEqual([false, false])
  })

  it("headersDelayMs holds the response (counted as open), firstChunkDelayMs and chunkDelayMs space the stream", async () => {
    mock.script({ headersDelayMs: 120 })
    const pending = openai.chat.completions.create(ask("d"))
    await mock.waitFor(1)
    expect(mock.openResponses).toBe(1)
    const started = Date.now()
    await pending
    expect(Date.now() - started).toBeGreaterThanOrEqual(100)

    mock.script({ firstChunkDelayMs: 120, chunkDelayMs: 30, words: 4 })
    const { all, headersAt } = await rawFrames("/v1/chat/completions", chat("d"))
    const frames = await all()
    expect(frames[0]!.at - headersAt).toBeLessThan(100)
    const content = frames.slice(1, 5)
    expect(content[0]!.at - frames[0]!.at).toBeGreaterThanOrEqual(110)
    for (let i = 1; i < content.length; i++) expect(content[i]!.at - content[i - 1]!.at).toBeGreaterThanOrEqual(20)
  })

  it("Stall keeps the connection open and silent (pings still flow) until the client gives up", async () => {
    mock.script({ fault: Fault.Stall({ afterChunks: 2 }), pingEveryMs: 15 }, { fault: Fault.Stall({ afterChunks: 1 }), pingEveryMs: 15 })
    const controller = new AbortController()
    const openaiStream = await rawFrames("/v1/chat/completions", chat("st"), controller.signal)
    const seen: Array<string> = []
    for (let i = 0; i < 6; i++) seen.push((await openaiStream.next())!.text)
    expect(seen.slice(0, 3).every((f) => f.startsWith("data: {"))).toBe(true)
    expect(seen.slice(3)).toEqual([": keep-alive", ": keep-alive", ": keep-alive"])
    controller.abort()
    expect(await mock.requests[0]!.closed).toBe(true)
    expect(mock.requests[0]!.clientAborted).toBe(true)

    const second = new AbortController()
    const anthropicStream = await rawFrames("/v1/messages", claudeStream("st"), second.signal)
    const events: Array<string> = []
    for (let i = 0; i < 6; i++) events.push((await anthropicStream.next())!.text.split("\n")[0]!)
    expect(events).toEqual(["event: message_start", "event: content_block_start", "event: ping", "event: content_block_delta", "event: ping", "event: ping"])
    second.abort()
    expect(await mock.requests[1]!.closed).toBe(true)
  })

  it("cuts, malformed frames, missing terminators and error events over the Anthropic SDK", async () => {
    mock.script({ fault: Fault.Cut({ afterChunks: 2 }) }, { fault: Fault.Malformed({ afterChunks: 2 }) }, { fault: Fault.ErrorEvent({ afterChunks: 2 }) })
    const drain = async () => {
      for await (const _ of await anthropic.messages.create(claudeStream("x"))) { /* drain */ }
    }
    expect(await drain().catch((e: unknown) => e)).toBeInstanceOf(Error)
    expect(await drain().catch((e: unknown) => e)).toBeInstanceOf(Error)
    const inBand = await drain().catch((e: unknown) => e)
    expect(inBand).toBeInstanceOf(Anthropic.APIError)
    expect(String((inBand as Error).message)).toMatch(/overloaded/i)
    // A cut is the mock's doing, not the client's.
    expect(mock.requests[0]!.clientAborted).toBe(false)

    mock.script({ fault: Fault.NoTerminator() })
    const { all } = await rawFrames("/v1/messages", claudeStream("x"))
    const events = (await all()).map((f) => f.text.split("\n")[0])
    expect(events.at(-1)).toBe("event: message_delta")
  })

  it("splitUtf8 writes each frame in two writes cut inside a multi-byte character; both SDKs still decode", async () => {
    mock.script({ splitUtf8: true }, { splitUtf8: true })
    const res = await fetch(`${mock.url}/chat/completions`, { method: "POST", body: JSON.stringify(chat("utf")) })
    const reader = res.body!.getReader()
    let halves = 0
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      try {
        new TextDecoder("utf-8", { fatal: true }).decode(value)
      } catch {
        halves++
      }
    }
    expect(halves).toBeGreaterThan(0)
    let text = ""
    for await (const event of await anthropic.messages.create(claudeStream("utf"))) {
      if (event.type === "content_block_delta" && event.delta.type === "text_delta") text += event.delta.text
    }
    expect(text).toBe(mock.textFor(ask("utf")))
  })

  it("Anthropic tool call: input_json_delta pieces that parse as JSON, stop_reason tool_use", async () => {
    mock.script({ toolCall: true }, { toolCall: true })
    let json = ""
    let stop: string | null | undefined
    for await (const event of await anthropic.messages.create(claudeStream("tool"))) {
      if (event.type === "content_block_delta" && event.delta.type === "input_json_delta") json += event.delta.partial_json
      if (event.type === "message_delta") stop = event.delta.stop_reason
    }
    expect(JSON.parse(json)).toMatchObject({ city: "Zürich", note: "🌊 tide" })
    expect(stop).toBe("tool_use")
    const message = await anthropic.messages.create(claude("tool"))
    expect(message.content[0]).toMatchObject({ type: "tool_use", name: "get_forecast", input: { city: "Zürich" } })
  })
})

describe("MockUpstream: continuations", () => {
  it("Anthropic prefill: the rest of the same text, with overlap, restart or a 400", async () => {
    const full = mock.textFor(ask("tides"))
    const partial = full.slice(0, 25)
    const prefill = { ...claude("tides"), messages: [{ role: "user" as const, content: "tides" }, { role: "assistant" as const, content: partial }] }
    const rest = async () => {
      let text = ""
      for await (const event of await anthropic.messages.create({ ...prefill, stream: true })) {
        if (event.type === "content_block_delta" && event.delta.type === "text_delta") text += event.delta.text
      }
      return text
    }
    expect(partial.trimEnd() + await rest()).toBe(full)
    expect(mock.textFor(prefill)).toBe(full)
    mock.script({ continuation: ContinuationFault.Overlap({ chars: 4 }) }, { continuation: ContinuationFault.Restart() }, { continuation: ContinuationFault.RejectPrefill() })
    expect(await rest()).toBe(full.slice(partial.trimEnd().length - 4))
    expect(await rest()).toBe(full)
    const rejected = await rejection(rest())
    expect(rejected).toBeInstanceOf(Anthropic.BadRequestError)
    expect(rejected.error).toMatchObject({ error: { type: "invalid_request_error" } })
  })

  it("a user instruction with core's default wording, or one quoting the tail of the delivered text", async () => {
    const { Continuation } = await import("@breakwater/core")
    const full = mock.textFor(ask("quote"))
    const partial = full.slice(0, 40)
    const instructed = Continuation.toRequest(ask("quote") as never, { partial }, "user-instruction")
    expect(mock.textFor(instructed)).toBe(full)
    expect((await openai.chat.completions.create(instructed as never)).choices[0]?.message.content).toBe(full.slice(40))
    const quoting = { ...ask("quote"), messages: [...ask("quote").messages, { role: "user" as const, content: `Continue after "${partial.slice(-15)}".` }] }
    expect((await openai.chat.completions.create(quoting)).choices[0]?.message.content).toBe(full.slice(40))
  })
})

describe("MockUpstream: lifecycle", () => {
  it("waitFor resolves on arrival and rejects after its timeout", async () => {
    mock.script({ fault: Fault.StallBeforeHeaders() })
    const controller = new AbortController()
    const pending = fetch(`${mock.url}/chat/completions`, { method: "POST", body: JSON.stringify(ask("w")), signal: controller.signal }).catch(() => undefined)
    await mock.waitFor(1)
    expect(mock.received).toBe(1)
    await expect(mock.waitFor(2, 30)).rejects.toThrow(/1 of 2/)
    controller.abort()
    await pending
  })

  it("stop ends open streams and connections without hanging; restart serves on the same port", async () => {
    mock.script({ fault: Fault.Stall({ afterChunks: 1 }) })
    const open = await rawFrames("/v1/chat/completions", chat("stop"))
    await open.next()
    expect(mock.openConnections).toBeGreaterThan(0)
    await mock.stop()
    expect(mock.openConnections).toBe(0)
    expect(await open.all().catch((e: unknown) => e)).toBeInstanceOf(Error)
    // Stopping was the mock's doing, not the client's.
    expect(await mock.requests[0]!.closed).toBe(false)
    expect(await openai.chat.completions.create(ask("down")).catch((e: unknown) => e)).toBeInstanceOf(OpenAI.APIConnectionError)
    await mock.restart()
    expect((await openai.chat.completions.create(ask("up"))).choices[0]?.message.content).toBe(mock.textFor(ask("up")))
  })

  it("a client that disconnects mid-stream leaves no open response and no error behind", async () => {
    mock.script({ chunkDelayMs: 20, pingEveryMs: 5 })
    const controller = new AbortController()
    const stream = await rawFrames("/v1/chat/completions", chat("bye"), controller.signal)
    await stream.next()
    await stream.next()
    controller.abort()
    expect(await mock.requests[0]!.closed).toBe(true)
    expect(mock.openResponses).toBe(0)
    expect((await openai.chat.completions.create(ask("after"))).choices[0]?.message.content).toBe(mock.textFor(ask("after")))
  })

  it("scoped: an Effect scope starts and stops it", async () => {
    const { Effect } = await import("effect")
    const url = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const scoped = yield* MockUpstream.scoped({ words: 5 })
      const res = yield* Effect.promise(() => fetch(`${scoped.url}/chat/completions`, { method: "POST", body: JSON.stringify(ask("s")) }))
      expect((yield* Effect.promise(() => res.json())).choices[0].message.content).toBe(scoped.textFor(ask("s")))
      return scoped.url
    })))
    expect(await fetch(`${url}/models`).catch((e: unknown) => e)).toBeInstanceOf(Error)
  })

  it("fast mode: the same answers from cached renderings, counted but not logged", async () => {
    const fast = await MockUpstream.start({ fast: true, words: 12 })
    try {
      const client = new OpenAI({ baseURL: fast.url, apiKey: "k", maxRetries: 0 })
      for (let i = 0; i < 3; i++) {
        expect((await client.chat.completions.create(ask("fast"))).choices[0]?.message.content).toBe(fast.textFor(ask("fast")))
        expect((await collectOpenAi(await client.chat.completions.create({ ...ask("fast"), stream: true }))).text).toBe(fast.textFor(ask("fast")))
      }
      fast.script({ fault: Fault.Status({ status: 429 }), headers: { "retry-after": "1" } }, { fault: Fault.Cut({ afterChunks: 2 }) })
      expect(await client.chat.completions.create(ask("fast")).catch((e: unknown) => e)).toBeInstanceOf(OpenAI.RateLimitError)
      expect(await collectOpenAi(await client.chat.completions.create({ ...ask("fast"), stream: true })).catch((e: unknown) => e)).toBeInstanceOf(Error)
      expect(fast.received).toBe(8)
      expect(fast.requests).toHaveLength(0)
    } finally {
      await fast.stop()
    }
  })
})
