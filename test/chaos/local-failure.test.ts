/**
 * Issue #17, finding 1: one tenant must not open the breaker of an upstream it shares with
 * others. The attack as reported (a ~10 KB body with an unknown field nested 5,000 levels deep,
 * sent again and again by one key) and any other local failure (a defect in the gateway's stack,
 * the gateway's own `LocalFailure`) must leave the shared upstream's breaker closed, the gateway
 * ready, and the other key served — and must not be retried or failed over.
 */
import { type ChatCompletion, type LanguageModel, ModelError } from "@breakwater/core"
import { ConfigLoader, type Gateway, GatewayBuilder } from "@breakwater/gateway"
import { HttpHost } from "@breakwater/host-http"
import { OpenAiProvider } from "@breakwater/provider-openai"
import { MockUpstream } from "@breakwater/testing"
import { Effect, Exit, Scope, Stream } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"

const ATTACKER = "gw-tenant-attacker-0001"
const VICTIM = "gw-tenant-victim-00002"
let scope: Scope.CloseableScope
let shared: MockUpstream.MockUpstream
let backup: MockUpstream.MockUpstream
let gateway: Gateway.Gateway
let url = ""
// How a request marks itself to make the stack fail locally (see `faulty` below).
const failing = { calls: 0 }

/**
 * The real adapter of the shared upstream, failing locally for requests that ask it to: with a
 * defect (as an encoder's stack overflow was) or with the taxonomy's `LocalFailure`.
 */
const faulty = (real: LanguageModel.Service): LanguageModel.Service => {
  const local = (request: ChatCompletion.ChatRequest) => {
    const mode = (request as { readonly fail_locally?: unknown }).fail_locally
    if (mode === undefined) return undefined
    failing.calls++
    return mode === "defect"
      ? Effect.die(new RangeError("Maximum call stack size exceeded"))
      : Effect.fail(ModelError.localFailure("the request could not be encoded", new RangeError("boom"), "shared"))
  }
  return {
    generate: (request, options) => local(request) ?? real.generate(request, options),
    stream: (request, options) => {
      const failure = local(request)
      return failure === undefined ? real.stream(request, options) : Stream.fromEffect(failure)
    }
  }
}

beforeAll(async () => {
  shared = await MockUpstream.start({ words: 6 })
  backup = await MockUpstream.start({ words: 6 })
  scope = Effect.runSync(Scope.make())
  const config = await Effect.runPromise(ConfigLoader.fromObject({
    auth: { keys: [{ name: "attacker", key: ATTACKER, models: ["chat"] }, { name: "victim", key: VICTIM, models: ["chat"] }] },
    upstreams: {
      shared: { provider: "openai", baseUrl: shared.url, models: ["chat"] },
      backup: { provider: "openai", baseUrl: backup.url, models: ["chat"] }
    },
    routes: { chat: { upstreams: ["shared", "backup"] } },
    defaults: { retry: { baseDelay: "1 millis", maxDelay: "5 millis" } }
  }, {}))
  const real = await Effect.runPromise(Scope.extend(OpenAiProvider.make({ name: "shared", baseUrl: shared.url }), scope))
  gateway = await Effect.runPromise(Scope.extend(GatewayBuilder.make(config, { adapters: { shared: faulty(real) } }), scope))
  url = (await Effect.runPromise(Scope.extend(HttpHost.serve(gateway, { port: 0, logLevel: "none" }), scope))).url
})
afterAll(async () => {
  await Effect.runPromise(Scope.close(scope, Exit.void))
  await Promise.all([shared.stop(), backup.stop()])
})

const chat = (key: string, body: unknown) =>
  fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: typeof body === "string" ? body : JSON.stringify(body)
  }).then(async (res) => ({ status: res.status, body: await res.text() }))

const valid = { model: "chat", messages: [{ role: "user", content: "hello there" }] }

const expectSharedHealthy = async () => {
  const health = await Effect.runPromise(gateway.health)
  expect(health.ready).toBe(true)
  expect(health.upstreams.find((u) => u.name === "shared")?.circuit).toBe("closed")
  const served = await chat(VICTIM, valid)
  expect(served.status, served.body).toBe(200)
}

describe("one tenant's bad requests never open a shared breaker", () => {
  it("the reported attack: 12 bodies with an unknown field nested 5,000 levels deep are 400s; the upstream, breaker and readiness are untouched", async () => {
    const body = `{"model":"chat","messages":[{"role":"user","content":"hi"}],"x":${"[".repeat(5_000)}${"]".repeat(5_000)}}`
    expect(body.length).toBeGreaterThan(10_000)
    const before = shared.received
    for (let i = 0; i < 12; i++) {
      for (const stream of [false, true]) {
        const answer = await chat(ATTACKER, stream ? body.replace('"model"', '"stream":true,"model"') : body)
        expect(answer.status, answer.body).toBe(400)
        expect(answer.body).toMatch(/nested deeper than 64 levels/)
      }
    }
    expect(shared.received).toBe(before)
    await expectSharedHealthy()
  })

  it("a defect or a LocalFailure in the stack is a 500 without detail, tried once, never failed over, never counted", async () => {
    const backupBefore = backup.received
    for (let i = 0; i < 12; i++) {
      for (const mode of ["defect", "local"]) {
        for (const stream of [false, true]) {
          const callsBefore = failing.calls
          const answer = await chat(ATTACKER, { ...valid, stream, fail_locally: mode })
          expect(answer.status, answer.body).toBe(500)
          expect(answer.body).not.toMatch(/call stack|boom|RangeError/)
          // Not retried, not failed over to the backup.
          expect(failing.calls).toBe(callsBefore + 1)
        }
      }
    }
    expect(backup.received).toBe(backupBefore)
    await expectSharedHealthy()
  })
})
