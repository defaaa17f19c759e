import Anthropic from "@anthropic-ai/sdk"
import { MockUpstream } from "@breakwater/testing"
import OpenAI from "openai"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"

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
    mock.script({ status: 429, headers: { "retry-after": "7" } })
    const error = await openai.chat.completions.create(ask("x")).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(OpenAI.RateLimitError)
    expect((error as InstanceType<typeof OpenAI.APIError>).headers?.get("retry-after")).toBe("7")
    // The script is consumed: the next request is normal.
    expect((await openai.chat.completions.create(ask("x"))).choices[0]?.message.content).toBe(mock.textFor(ask("x")))
  })

  it("cuts a stream after n chunks: the client sees an error, not a complete stream", async () => {
    mock.script({ cutAfterChunks: 3 })
    const stream = await openai.chat.completions.create({ ...ask("cut"), stream: true })
    const error = await collectOpenAi(stream).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(Error)
  })

  it("ends without the terminator, sends malformed frames and in-band errors on request", async () => {
    mock.script({ endWithoutTerminator: true }, { malformedAfterChunks: 2 }, { errorEventAfterChunks: 2 })
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
    mock.script({ overlap: 5 }, { restart: true }, { rejectPrefill: true })
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
    mock.script({ stallBeforeHeaders: true })
    const controller = new AbortController()
    const pending = fetch(`${mock.url}/chat/completions`, { method: "POST", body: JSON.stringify(ask("s")), signal: controller.signal })
      .catch((e: unknown) => e)
    await mock.waitFor(1)
    expect(mock.openResponses()).toBe(1)
    controller.abort()
    expect(await pending).toBeInstanceOf(Error)
  })

  it("applies chaos reproducibly from its seed", async () => {
    const outcomes = async () => {
      mock.reset()
      mock.chaos({ rate: 0.5, behaviors: [{ status: 503 }], seed: 7 })
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
    mock.script({ status: 529 }, { errorEventAfterChunks: 2 })
    const params = { model: "claude-mock", max_tokens: 100, messages: [{ role: "user" as const, content: "x" }] }
    const error = await anthropic.messages.create(params).catch((e: unknown) => e)
    expect((error as InstanceType<typeof Anthropic.APIError>).status).toBe(529)
    const res = await fetch(`${mock.origin}/v1/messages`, { method: "POST", body: JSON.stringify({ ...params, stream: true }) })
    expect(await res.text()).toMatch(/event: error\ndata: .*overloaded_error/)
  })
})
