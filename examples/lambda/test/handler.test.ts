/**
 * The example handler, invoked the way Lambda invokes it, against a local mock upstream.
 */
import { MockUpstream } from "@breakwater/testing"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makeHandlers } from "../src/handler.js"

let mock: MockUpstream.MockUpstream
beforeAll(async () => {
  mock = await MockUpstream.start()
})
afterAll(async () => {
  await mock.stop()
})

const event = (body: unknown, headers: Record<string, string> = {}) => ({
  version: "2.0",
  rawPath: "/v1/chat/completions",
  headers: { "content-type": "application/json", ...headers },
  requestContext: { http: { method: "POST" } },
  body: Buffer.from(JSON.stringify(body)).toString("base64"),
  isBase64Encoded: true
})
const context = { getRemainingTimeInMillis: () => 30_000, awsRequestId: "lambda-req-1" }

describe("examples/lambda", () => {
  it("serves the config from the environment, with gateway keys, built once", async () => {
    const env = {
      BREAKWATER_LOG_LEVEL: "none",
      GATEWAY_KEY: "gw-lambda-key-01",
      BREAKWATER_CONFIG_JSON: JSON.stringify({
        auth: { keys: [{ name: "app", key: "${GATEWAY_KEY}" }] },
        upstreams: { mock: { provider: "openai", baseUrl: mock.url, models: ["gpt-4o-mini"] } },
        routes: { "gpt-4o-mini": { upstreams: ["mock"] } }
      })
    }
    const handlers = makeHandlers(env)
    const request = { model: "gpt-4o-mini", messages: [{ role: "user", content: "from lambda" }] }
    const ok = await handlers.buffered(event(request, { authorization: "Bearer gw-lambda-key-01" }) as never, context as never)
    expect(ok.statusCode).toBe(200)
    expect(JSON.parse(ok.body).choices[0].message.content).toBe(mock.textFor(request))
    const denied = await handlers.buffered(event(request) as never, context as never)
    expect(denied.statusCode).toBe(401)
    expect(handlers.builds()).toBe(1)
  })

  it("fails the invocation with every config problem listed when the config is broken", async () => {
    // A misconfigured function must fail loudly in its logs, not serve half a gateway.
    const handlers = makeHandlers({ BREAKWATER_LOG_LEVEL: "none", BREAKWATER_CONFIG_JSON: "{ not json" })
    const outcome = await handlers.buffered(event({ model: "x", messages: [] }) as never, context as never).then(() => "served", (e: unknown) => String(e))
    expect(outcome).toMatch(/BREAKWATER_CONFIG_JSON is not valid JSON/)
    const invalid = makeHandlers({ BREAKWATER_LOG_LEVEL: "none", BREAKWATER_CONFIG_JSON: JSON.stringify({ upstreams: {}, routes: {} }) })
    const issues = await invalid.buffered(event({ model: "x", messages: [] }) as never, context as never).then(() => "served", (e: unknown) => String(e))
    expect(issues).toMatch(/upstreams/)
    expect(issues).toMatch(/routes/)
  })
})
