/**
 * The hand-composed gateway over real HTTP: the openai client sees one answer while the primary
 * fails, and one complete stream while it cuts streams.
 */
import type { Gateway } from "@breakwater/gateway"
import { HttpHost } from "@breakwater/host-http"
import { MockUpstream } from "@breakwater/testing"
import { StreamResume } from "@breakwater/stream-resume"
import { Effect, Exit, Metric, Scope } from "effect"
import OpenAI from "openai"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makeGateway } from "../src/gateway.js"

const { Fault } = MockUpstream

let primary: MockUpstream.MockUpstream
let secondary: MockUpstream.MockUpstream
let scope: Scope.CloseableScope
let client: OpenAI
let gateway: Gateway.Gateway

beforeAll(async () => {
  primary = await MockUpstream.start()
  secondary = await MockUpstream.start()
  scope = Effect.runSync(Scope.make())
  gateway = await Effect.runPromise(Scope.extend(makeGateway({ primary: primary.url, secondary: secondary.url }), scope))
  const running = await Effect.runPromise(Scope.extend(HttpHost.serve(gateway, { port: 0, logLevel: "none" }), scope))
  client = new OpenAI({ baseURL: `${running.url}/v1`, apiKey: "unused", maxRetries: 0 })
})
afterAll(async () => {
  await Effect.runPromise(Scope.close(scope, Exit.void))
  await Promise.all([primary.stop(), secondary.stop()])
})

/** The resumes counted so far (the `resumed` outcome of stream-resume's counter). */
const resumed = async () => (await Effect.runPromise(Metric.value(Metric.tagged(StreamResume.resumesTotal, "outcome", "resumed")))).count

const ask = (content: string) => ({ model: "assistant", messages: [{ role: "user" as const, content }] })

describe("examples/custom-gateway", () => {
  it("falls back to the secondary while the primary returns 503s", async () => {
    primary.setDefault({ fault: Fault.Status({ status: 503 }) })
    try {
      const { data, response } = await client.chat.completions.create(ask("hello")).withResponse()
      expect(data.choices[0]?.message.content).toBe(secondary.textFor(ask("hello")))
      expect(response.headers.get("x-breakwater-upstream")).toBe("secondary")
    } finally {
      primary.setDefault({})
    }
  })

  it("resumes a stream the primary cuts", async () => {
    primary.reset()
    secondary.reset()
    const resumedBefore = await resumed()
    primary.script({ fault: Fault.Cut({ afterChunks: 6 }) })
    // (A prompt whose answer has no 8-character repeat at the cut: such a repeat is trimmed as an overlap.)
    let text = ""
    for await (const chunk of await client.chat.completions.create({ ...ask("tell me a story"), stream: true })) {
      text += chunk.choices[0]?.delta.content ?? ""
    }
    expect(text).toBe(primary.textFor(ask("tell me a story")))
    // The cut did happen and was resumed: the first upstream request is the one the mock cut
    // after 6 chunks, a continuation followed it, and the resume counter moved by one.
    const requests = [...primary.requests, ...secondary.requests].sort((x, y) => x.at - y.at)
    expect(requests.length).toBeGreaterThanOrEqual(2)
    expect(requests[0]!.behavior.fault).toEqual(Fault.Cut({ afterChunks: 6 }))
    expect(requests[0]!.body.messages).toHaveLength(1)
    expect((requests[1]!.body.messages as Array<unknown>).length).toBeGreaterThan(1)
    expect((await resumed()) - resumedBefore).toBe(1)
  })
})
