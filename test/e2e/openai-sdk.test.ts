/**
 * The gateway end to end: real HTTP, the official `openai` client, mock upstreams with faults.
 */
import { MockUpstream } from "@breakwater/testing"
import OpenAI from "openai"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { asAdmin, CANARY, GATEWAY_KEY, startGateway, type TestGateway } from "./support/gateway.js"

const { Fault, ContinuationFault } = MockUpstream

let gw: TestGateway
let client: OpenAI

beforeAll(async () => {
  gw = await startGateway()
  client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: GATEWAY_KEY, maxRetries: 0 })
})
afterAll(async () => {
  await gw?.close()
})
beforeEach(() => {
  gw.primary.reset()
  gw.secondary.reset()
})

const ask = (content: string) => ({ model: "chat", messages: [{ role: "user" as const, content }] })

describe("gateway end to end with the openai client", () => {
  it("answers a non-streaming request with the upstream's text", async () => {
    const { data, response } = await client.chat.completions.create(ask("hello there")).withResponse()
    expect(data.choices[0]?.message.content).toBe(gw.primary.textFor(ask("hello there")))
    expect(data.choices[0]?.finish_reason).toBe("stop")
    expect(response.headers.get("x-breakwater-upstream")).toBe("primary")
    expect(response.headers.get("x-request-id")).toBeTruthy()
  })

  it("streams a completion the client reads as one normal stream", async () => {
    const stream = await client.chat.completions.create({ ...ask("stream please"), stream: true, stream_options: { include_usage: true } })
    let text = ""
    let finish: string | null | undefined
    let usage: OpenAI.CompletionUsage | undefined
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? ""
      finish = chunk.choices[0]?.finish_reason ?? finish
      if (chunk.usage) usage = chunk.usage
    }
    expect(text).toBe(gw.primary.textFor(ask("stream please")))
    expect(finish).toBe("stop")
    expect(usage?.completion_tokens).toBeGreaterThan(0)
  })

  it("passes tool calls through whole, arguments parseable", async () => {
    gw.primary.script({ toolCall: true })
    const stream = await client.chat.completions.create({
      ...ask("call a tool"),
      stream: true,
      tools: [{ type: "function", function: { name: "lookup", parameters: { type: "object", properties: {} } } }]
    })
    const args: Array<string> = []
    let name = ""
    let finish: string | null | undefined
    for await (const chunk of stream) {
      for (const call of chunk.choices[0]?.delta.tool_calls ?? []) {
        args[call.index] = (args[call.index] ?? "") + (call.function?.arguments ?? "")
        name ||= call.function?.name ?? ""
      }
      finish = chunk.choices[0]?.finish_reason ?? finish
    }
    expect(name.length).toBeGreaterThan(0)
    expect(args.length).toBeGreaterThan(0)
    for (const a of args) expect(() => JSON.parse(a)).not.toThrow()
    expect(finish).toBe("tool_calls")
  })

  it("absorbs an upstream 429 with retry-after by retrying (single-upstream route)", async () => {
    gw.primary.script({ fault: Fault.Status({ status: 429 }), headers: { "retry-after": "0" } })
    const { data, response } = await client.chat.completions.create({ ...ask("rate limited"), model: "solo" }).withResponse()
    expect(data.choices[0]?.message.content).toBe(gw.primary.textFor(ask("rate limited")))
    expect(gw.primary.requests.length).toBe(2)
    expect(Number(response.headers.get("x-breakwater-attempts"))).toBe(2)
  })

  it("moves a rate-limited request to the next upstream at once on a fallback route", async () => {
    gw.primary.script({ fault: Fault.Status({ status: 429 }), headers: { "retry-after": "30" } })
    const { response } = await client.chat.completions.create(ask("rate limited twice")).withResponse()
    expect(response.headers.get("x-breakwater-upstream")).toBe("secondary")
    expect(gw.primary.requests.length).toBe(1)
  })

  it("absorbs an outage of the primary by falling back to the secondary", async () => {
    gw.primary.setDefault({ fault: Fault.Status({ status: 503 }) })
    try {
      const { data, response } = await client.chat.completions.create(ask("primary is down")).withResponse()
      expect(response.headers.get("x-breakwater-upstream")).toBe("secondary")
      expect(data.choices[0]?.message.content).toBe(gw.secondary.textFor(ask("primary is down")))
    } finally {
      gw.primary.setDefault({})
    }
  })

  it("gives up with a clear error, x-should-retry false, when every upstream fails", async () => {
    gw.primary.setDefault({ fault: Fault.Status({ status: 503 }) })
    gw.secondary.setDefault({ fault: Fault.Status({ status: 529 }) })
    try {
      const error = await client.chat.completions.create(ask("all down")).then(() => undefined, (e: unknown) => e)
      expect(error).toBeInstanceOf(OpenAI.APIError)
      const api = error as InstanceType<typeof OpenAI.APIError>
      expect(api.status).toBeGreaterThanOrEqual(500)
      expect(api.headers?.get?.("x-should-retry") ?? (api.headers as unknown as Record<string, string>)["x-should-retry"]).toBe("false")
      expect(api.message.length).toBeGreaterThan(0)
    } finally {
      gw.primary.setDefault({})
      gw.secondary.setDefault({})
    }
  })

  const streamText = async (content: string, model = "chat") => {
    const stream = await client.chat.completions.create({ model, messages: [{ role: "user", content }], stream: true, stream_options: { include_usage: true } })
    let text = ""
    let finishes = 0
    const ids = new Set<string>()
    for await (const chunk of stream) {
      ids.add(chunk.id)
      text += chunk.choices[0]?.delta.content ?? ""
      if (chunk.choices[0]?.finish_reason != null) finishes++
    }
    return { text, finishes, ids }
  }

  for (const [name, ...faults] of [
    ["a connection cut", { fault: Fault.Cut({ afterChunks: 7 }) }],
    ["a cut with frames split inside UTF-8 characters", { fault: Fault.Cut({ afterChunks: 4 }), splitUtf8: true }],
    ["an in-band error event", { fault: Fault.ErrorEvent({ afterChunks: 9 }) }],
    ["a malformed frame", { fault: Fault.Malformed({ afterChunks: 5 }) }],
    ["a connection closed at chunk 12, without [DONE]", { fault: Fault.Cut({ afterChunks: 12 }) }],
    ["a stall mid-stream (idle timeout)", { fault: Fault.Stall({ afterChunks: 6 }) }],
    ["a continuation that repeats an overlap", { fault: Fault.Cut({ afterChunks: 8 }) }, { continuation: ContinuationFault.Overlap({ chars: 12 }) }]
  ] as ReadonlyArray<readonly [string, ...Array<MockUpstream.Behavior>]>) {
    it(`resumes a stream broken by ${name}: the client sees one normal completion`, async () => {
      gw.primary.script(...faults)
      const { text, finishes, ids } = await streamText(`resume after ${name}`)
      expect(text).toBe(gw.primary.textFor(ask(`resume after ${name}`)))
      expect(finishes).toBe(1)
      expect(ids.size).toBe(1)
      expect(gw.primary.requests.length + gw.secondary.requests.length).toBeGreaterThanOrEqual(2)
    })
  }

  it("ends an unrecoverable break with an error the client sees, never a silent truncation", async () => {
    gw.primary.setDefault({ fault: Fault.Cut({ afterChunks: 3 }) })
    gw.secondary.setDefault({ fault: Fault.Cut({ afterChunks: 0 }) })
    try {
      const outcome = await streamText("never completes").then(() => "completed", (e: unknown) => e)
      expect(outcome).toBeInstanceOf(Error)
    } finally {
      gw.primary.setDefault({})
      gw.secondary.setDefault({})
    }
  })

  it("counts the retries, timeouts and resumes it causes in /metrics", async () => {
    /** The sum of one metric's samples whose labels include `labels`. */
    const metric = async (name: string, labels = "") => {
      const text = await (await fetch(`${gw.url}/metrics`, asAdmin)).text()
      return text.split("\n")
        .filter((l) => l.startsWith(`${name}{`) && l.slice(name.length, l.indexOf("}")).includes(labels))
        .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(" ") + 1)), 0)
    }
    const counters = () =>
      Promise.all([
        metric("breakwater_retries_total"),
        metric("breakwater_timeouts_total", `phase="idle"`),
        metric("breakwater_stream_resumes_total", `outcome="resumed"`)
      ])
    const before = await counters()
    // Its own traffic (whatever ran before): a retry on the single-upstream route, a stream that
    // stalls (an idle timeout, then a resume), and a stream that is cut (a resume).
    gw.primary.script({ fault: Fault.Status({ status: 503 }) })
    await client.chat.completions.create({ ...ask("metrics: retried"), model: "solo" })
    gw.primary.script({ fault: Fault.Stall({ afterChunks: 4 }) })
    expect((await streamText("metrics: stalled")).text).toBe(gw.primary.textFor(ask("metrics: stalled")))
    gw.primary.script({ fault: Fault.Cut({ afterChunks: 4 }) })
    expect((await streamText("metrics: cut")).text).toBe(gw.primary.textFor(ask("metrics: cut")))
    const [retries, idle, resumed] = await counters()
    expect(retries - before[0]).toBeGreaterThanOrEqual(1)
    expect(idle - before[1]).toBe(1)
    expect(resumed - before[2]).toBe(2)
    // Breakers are per model deployment (issue #18): the key names upstream and model.
    expect(await (await fetch(`${gw.url}/metrics`, asAdmin)).text()).toMatch(/breakwater_circuit_state\{key="primary@chat",state="closed"\} 1/)
  })

  it("never shows a provider key in a response or a log line, even when the provider echoes it", async () => {
    // Providers that echo the key they were sent in an error (some do, in 401s and 400s): the
    // gateway must scrub it from what it shows. Single-upstream route, so each error reaches the client.
    const echoed = `Incorrect API key provided: ${CANARY}`
    const answers: Array<{ status: number; body: string; headers: Array<string> }> = []
    for (const status of [401, 400, 503]) {
      gw.primary.setDefault({ fault: Fault.Status({ status, message: echoed }) })
      const raw = await fetch(`${gw.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${GATEWAY_KEY}` },
        body: JSON.stringify({ ...ask(`echo ${CANARY} ${status}`), model: "solo" })
      })
      const headers: Array<string> = []
      raw.headers.forEach((value) => headers.push(value))
      answers.push({ status: raw.status, body: await raw.text(), headers })
    }
    gw.primary.setDefault({})
    for (const a of answers) {
      expect(a.status).toBeGreaterThanOrEqual(400)
      expect(a.body).not.toContain(CANARY)
      for (const value of a.headers) expect(value).not.toContain(CANARY)
    }
    // The provider's own message does reach the client (scrubbed) for the bad request: the check above can fail.
    expect(answers[1]!.body).toContain("Incorrect API key provided: [redacted]")
    for (const line of gw.logs) expect(line).not.toContain(CANARY)
    expect(await (await fetch(`${gw.url}/metrics`, asAdmin)).text()).not.toContain(CANARY)
    expect(await (await fetch(`${gw.url}/readyz`, asAdmin)).text()).not.toContain(CANARY)
    // The upstream did receive it, and its error bodies carried it back: the key is used, just never shown.
    expect(JSON.stringify(gw.primary.requests.map((r) => r.headers))).toContain(CANARY)
    expect(gw.primary.requests.every((r) => r.behavior.fault?._tag === "Status" && r.behavior.fault.message === echoed)).toBe(true)
  })
})

describe("gateway end to end with raw HTTP: bad input gets a clear 4xx", () => {
  const post = (body: string, headers: Record<string, string> = {}) =>
    fetch(`${gw.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${GATEWAY_KEY}`, ...headers },
      body
    })
  const expectError = async (response: Response, status: number, pattern: RegExp) => {
    expect(response.status).toBe(status)
    const body = await response.json() as { error: { message: string; type: string } }
    expect(body.error.message).toMatch(pattern)
  }

  it("bad JSON", async () => expectError(await post("{not json"), 400, /JSON/i))
  it("wrong schema", async () => expectError(await post(JSON.stringify({ model: "chat", messages: "hi" })), 400, /messages/))
  it("oversize body", async () => expectError(await post(JSON.stringify({ ...ask("x".repeat(100 * 1024)) })), 413, /large|bytes/i))
  it("missing key", async () => expectError(await post(JSON.stringify(ask("hi")), { authorization: "" }), 401, /key/i))
  it("wrong key", async () => expectError(await post(JSON.stringify(ask("hi")), { authorization: "Bearer gw-wrong-key-9999" }), 401, /key/i))
  it("unknown model", async () => expectError(await post(JSON.stringify({ ...ask("hi"), model: "nope" })), 404, /nope/))
})
