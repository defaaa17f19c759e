/**
 * The fault matrix's Messages variant: every fault of the matrix (`support/faults.ts`) injected on
 * the first attempt of a stream through `POST /v1/messages`, read with the official
 * `@anthropic-ai/sdk`. Whatever broke (a status before the first event, a reset, a stall, a cut
 * or an error event mid-answer), the SDK sees one well-formed message whose text is the
 * undisturbed answer: one `message_start`, one text block, one `message_delta` and `message_stop`.
 */
import Anthropic from "@anthropic-ai/sdk"
import { ConfigLoader, GatewayBuilder } from "@breakwater/gateway"
import { HttpHost } from "@breakwater/host-http"
import { MockUpstream } from "@breakwater/testing"
import { Effect, Exit, Scope } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { behaviorOf, faults } from "./support/faults.js"

let primary: MockUpstream.MockUpstream
let secondary: MockUpstream.MockUpstream
let client: Anthropic
const scope = Effect.runSync(Scope.make())

beforeAll(async () => {
  primary = await MockUpstream.start({ words: 24 })
  secondary = await MockUpstream.start({ words: 24 })
  const config = await Effect.runPromise(ConfigLoader.fromObject({
    upstreams: {
      primary: { provider: "openai", baseUrl: primary.url, models: ["chat"] },
      secondary: { provider: "anthropic", baseUrl: secondary.origin, models: { chat: "claude-mock" } }
    },
    routes: { chat: { upstreams: ["primary", "secondary"], deadline: 8_000 } },
    defaults: {
      retry: { baseDelay: "5 millis", maxDelay: "50 millis", maxRetryAfter: "2 seconds" },
      timeouts: { headers: "400 millis", firstToken: "600 millis", idle: "400 millis" },
      breaker: { minimumCalls: 100 }
    }
  }, {}))
  const gateway = await Effect.runPromise(Scope.extend(GatewayBuilder.make(config), scope))
  const url = (await Effect.runPromise(Scope.extend(HttpHost.serve(gateway, { port: 0, logLevel: "none" }), scope))).url
  client = new Anthropic({ baseURL: url, apiKey: "unused-without-client-keys", maxRetries: 0 })
})
afterAll(async () => {
  await Effect.runPromise(Scope.close(scope, Exit.void))
  await Promise.all([primary?.stop(), secondary?.stop()])
})

describe("fault matrix through /v1/messages with the Anthropic SDK", { timeout: 60_000 }, () => {
  faults.forEach(([name, scenario], i) => {
    it(`${name} on the first attempt: finalMessage() is the undisturbed answer, one well-formed message`, async () => {
      primary.reset()
      secondary.reset()
      primary.script(behaviorOf(scenario))
      const question = { model: "chat", max_tokens: 256, messages: [{ role: "user" as const, content: `messages question ${i}` }] }
      const stream = client.messages.stream(question)
      const types: Array<string> = []
      stream.on("streamEvent", (event) => types.push(event.type))
      const final = await stream.finalMessage()
      expect(final.content).toHaveLength(1)
      expect(final.content[0]!.type === "text" ? final.content[0]!.text : "").toBe(primary.textFor(question))
      expect(final.stop_reason).toBe("end_turn")
      expect(types.filter((t) => t === "message_start")).toHaveLength(1)
      expect(types.filter((t) => t === "message_delta")).toHaveLength(1)
      expect(types.filter((t) => t === "message_stop")).toHaveLength(1)
      expect(types.at(-1)).toBe("message_stop")
    })
  })
})
