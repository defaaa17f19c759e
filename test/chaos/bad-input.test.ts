/**
 * Bad input against the HTTP host, property-based: whatever a client sends, it gets a JSON
 * answer (a 4xx with a message when the input is wrong), the server never crashes and never
 * hangs, and no upstream is called for a request that is refused.
 */
import { ConfigLoader, GatewayBuilder } from "@breakwater/gateway"
import { HttpHost } from "@breakwater/host-http"
import { FakeLanguageModel, MockUpstream } from "@breakwater/testing"
import { Effect, Exit, Scope } from "effect"
import fc from "fast-check"
import { request as httpRequest } from "node:http"
import { connect } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"

const KEY = "gw-fuzz-key-0001"
const LIMITED = "gw-fuzz-limited-0002"
let url = ""
let scope: Scope.CloseableScope
const upstream = FakeLanguageModel.make()

beforeAll(async () => {
  scope = Effect.runSync(Scope.make())
  const config = await Effect.runPromise(ConfigLoader.fromObject({
    server: { maxBodyBytes: 32 * 1024, maxHeaderBytes: 8 * 1024, requestTimeout: "1500 millis" },
    auth: { keys: [{ name: "all", key: KEY }, { name: "limited", key: LIMITED, models: ["other"] }] },
    upstreams: { up: { provider: "openai", baseUrl: "http://127.0.0.1:9/v1" } },
    routes: { chat: { upstreams: ["up"] }, other: { upstreams: ["up"] } }
  }, {}))
  const gateway = await Effect.runPromise(Scope.extend(GatewayBuilder.make(config, { adapters: { up: upstream.model } }), scope))
  const running = await Effect.runPromise(Scope.extend(HttpHost.serve(gateway, { port: 0, logLevel: "none" }), scope))
  url = running.url
})
afterAll(async () => {
  await Effect.runPromise(Scope.close(scope, Exit.void))
})

interface Answer {
  readonly status: number
  readonly contentType: string
  readonly body: string
}

/** A raw request (node:http, so bodies can be any bytes and headers anything legal). */
const send = (body: Uint8Array | string, headers: Record<string, string>, method = "POST", path = "/v1/chat/completions") =>
  new Promise<Answer>((resolve, reject) => {
    const req = httpRequest(`${url}${path}`, { method, headers, timeout: 5_000 }, (res) => {
      const parts: Array<Buffer> = []
      res.on("data", (p: Buffer) => parts.push(p))
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, contentType: String(res.headers["content-type"] ?? ""), body: Buffer.concat(parts).toString("utf8") }))
      res.on("error", reject)
    })
    // A hang is a failure: the request must be answered well within 5 s.
    req.on("timeout", () => req.destroy(new Error(`no answer within 5 s for ${method} ${path}`)))
    req.on("error", reject)
    req.end(body)
  })

const expectClientError = (answer: Answer) => {
  expect(answer.status, answer.body).toBeGreaterThanOrEqual(400)
  expect(answer.status, answer.body).toBeLessThan(500)
  expect(answer.contentType).toMatch(/application\/json/)
  const parsed = JSON.parse(answer.body) as { error?: { message?: unknown; type?: unknown } }
  expect(typeof parsed.error?.message).toBe("string")
  expect((parsed.error?.message as string).length).toBeGreaterThan(0)
}

const auth = { "content-type": "application/json", authorization: `Bearer ${KEY}` }
const valid = { model: "chat", messages: [{ role: "user", content: "hi" }] }

/** A valid request with one field replaced by an arbitrary JSON value of the wrong shape. */
const mutated = fc.oneof(
  fc.record({ model: fc.oneof(fc.integer(), fc.constant(null), fc.array(fc.string())), messages: fc.constant(valid.messages) }),
  fc.record({ model: fc.constant("chat"), messages: fc.oneof(fc.string(), fc.integer(), fc.constant([]), fc.array(fc.integer(), { minLength: 1 })) }),
  fc.record({
    model: fc.constant("chat"),
    messages: fc.constant(valid.messages),
    temperature: fc.oneof(fc.string(), fc.object())
  }),
  fc.record({
    model: fc.constant("chat"),
    messages: fc.array(fc.record({ role: fc.constantFrom("wizard", "", "USER"), content: fc.string() }), { minLength: 1, maxLength: 3 })
  }),
  fc.record({ model: fc.constant("chat"), messages: fc.constant(valid.messages), stream: fc.oneof(fc.string(), fc.integer()) }),
  fc.json().filter((j) => {
    const v = JSON.parse(j) as unknown
    return typeof v !== "object" || v === null || Array.isArray(v) || !("messages" in v)
  }).map((j) => JSON.parse(j) as unknown)
)

describe("bad input (property-based)", () => {
  it("a request of the wrong shape gets a 4xx JSON error and never reaches the upstream", async () => {
    const before = upstream.calls.length
    await fc.assert(
      fc.asyncProperty(mutated, async (body) => {
        expectClientError(await send(JSON.stringify(body), auth))
      }),
      { numRuns: 150 }
    )
    expect(upstream.calls.length).toBe(before)
  })

  it("arbitrary bytes (invalid UTF-8, truncated JSON) get a 4xx JSON error", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ minLength: 1, maxLength: 512 }),
          fc.string().map((s) => JSON.stringify(valid).slice(0, Math.max(1, s.length % 40)))
        ),
        async (body) => {
          expectClientError(await send(body, auth))
        }
      ),
      { numRuns: 100 }
    )
  })

  it("arbitrary authorization headers never pass and never reach the upstream", async () => {
    const before = upstream.calls.length
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ unit: "grapheme-ascii" }).map((s) => `Bearer ${s}`),
          fc.string({ unit: "grapheme-ascii" }),
          fc.constant(`Bearer ${KEY.slice(0, -1)}`),
          fc.constant(`Basic ${Buffer.from(`x:${KEY}`).toString("base64")}`)
        ).filter((h) => h.trim() !== `Bearer ${KEY}` && h.trim() !== `Bearer ${LIMITED}` && !/[\r\n]/.test(h)),
        async (header) => {
          const answer = await send(JSON.stringify(valid), { "content-type": "application/json", authorization: header })
          expectClientError(answer)
          expect(answer.status).toBe(401)
        }
      ),
      { numRuns: 100 }
    )
    expect(upstream.calls.length).toBe(before)
  })

  it("a key limited to some models cannot use the others", async () => {
    const answer = await send(JSON.stringify(valid), { "content-type": "application/json", authorization: `Bearer ${LIMITED}` })
    expectClientError(answer)
    expect(answer.status).toBe(403)
    const allowed = await send(JSON.stringify({ ...valid, model: "other" }), { "content-type": "application/json", authorization: `Bearer ${LIMITED}` })
    expect(allowed.status).toBe(200)
  })

  it("oversize bodies and oversize headers are refused with their status, and the server lives on", async () => {
    expectClientError(await send(JSON.stringify({ ...valid, messages: [{ role: "user", content: "x".repeat(64 * 1024) }] }), auth))
    const huge = await send(JSON.stringify(valid), { ...auth, "x-filler": "y".repeat(16 * 1024) }).catch((e: Error) => e)
    // node answers 431 and closes; either way the server must still serve the next request.
    if (!(huge instanceof Error)) expect(huge.status).toBe(431)
    const after = await send(JSON.stringify(valid), auth)
    expect(after.status).toBe(200)
  })

  it("many small messages within the body limit are served, not crashed on", async () => {
    const messages = Array.from({ length: 800 }, (_, i) => ({ role: i % 2 === 0 ? "user" : "assistant", content: "k" }))
    messages.push({ role: "user", content: "and now?" })
    const answer = await send(JSON.stringify({ model: "chat", messages }), auth)
    expect(answer.status).toBe(200)
  })

  // Over a real upstream transport (the OpenAI adapter calling a MockUpstream): where requests
  // go is observed, not assumed. An "attacker" mock stands for every other address.
  describe("where the gateway calls (SSRF)", () => {
    let ssrfScope: Scope.CloseableScope
    let gatewayUrl = ""
    let target: MockUpstream.MockUpstream
    let attacker: MockUpstream.MockUpstream

    beforeAll(async () => {
      target = await MockUpstream.start({ words: 4 })
      attacker = await MockUpstream.start({ words: 4 })
      ssrfScope = Effect.runSync(Scope.make())
      const config = await Effect.runPromise(ConfigLoader.fromObject({
        auth: { keys: [{ name: "all", key: KEY }] },
        upstreams: { up: { provider: "openai", baseUrl: target.url, apiKey: "sk-upstream" } },
        routes: { chat: { upstreams: ["up"] } }
      }, {}))
      const gateway = await Effect.runPromise(Scope.extend(GatewayBuilder.make(config), ssrfScope))
      gatewayUrl = (await Effect.runPromise(Scope.extend(HttpHost.serve(gateway, { port: 0, logLevel: "none" }), ssrfScope))).url
    })
    afterAll(async () => {
      await Effect.runPromise(Scope.close(ssrfScope, Exit.void))
      await Promise.all([target.stop(), attacker.stop()])
    })

    /** A raw request to the gateway; `path` may be an absolute URL (the request line's absolute form). */
    const raw = (body: string, headers: Record<string, string>, path = "/v1/chat/completions") =>
      new Promise<Answer>((resolve, reject) => {
        const { hostname, port } = new URL(gatewayUrl)
        const req = httpRequest({ host: hostname, port, method: "POST", path, headers, timeout: 5_000 }, (res) => {
          const parts: Array<Buffer> = []
          res.on("data", (p: Buffer) => parts.push(p))
          res.on("end", () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers["content-type"] ?? ""), body: Buffer.concat(parts).toString("utf8") }))
          res.on("error", reject)
        })
        req.on("timeout", () => req.destroy(new Error(`no answer within 5 s for ${path}`)))
        req.on("error", reject)
        req.end(body)
      })

    it("a host header, an absolute URL or base_url/api_base fields in the body never change where the gateway calls", async () => {
      target.reset()
      attacker.reset()
      const elsewhere = attacker.url
      const attackerHost = new URL(attacker.origin).host
      const redirectingFields = { base_url: elsewhere, api_base: elsewhere, baseURL: elsewhere, baseUrl: elsewhere, endpoint: elsewhere }
      const answers = [
        await raw(JSON.stringify(valid), { ...auth, host: attackerHost }),
        await raw(JSON.stringify(valid), { ...auth, "x-forwarded-host": attackerHost, forwarded: `host=${attackerHost}` }),
        await raw(JSON.stringify(valid), { ...auth, host: attackerHost }, `${attacker.url}/chat/completions`),
        await raw(JSON.stringify({ ...valid, ...redirectingFields }), auth),
        await raw(JSON.stringify({ ...valid, ...redirectingFields, stream: true }), auth)
      ]
      const served = answers.filter((a) => a.status === 200).length
      // Plain requests are served; the absolute-form one may be refused, but never forwarded elsewhere.
      for (const a of answers) expect(a.status === 200 || (a.status >= 400 && a.status < 500), a.body).toBe(true)
      expect(served).toBeGreaterThanOrEqual(4)
      // Every served request reached the configured upstream, on its configured path and Host, once.
      expect(target.requests.length).toBe(served)
      for (const r of target.requests) {
        expect(r.path).toBe("/v1/chat/completions")
        expect(r.headers.host).toBe(new URL(target.origin).host)
      }
      // And nothing reached any other address.
      expect(attacker.received).toBe(0)
    })

    it("a route named like a URL is an unknown model (4xx), not a destination", async () => {
      target.reset()
      attacker.reset()
      expectClientError(await raw(JSON.stringify({ ...valid, model: attacker.url }), auth))
      expectClientError(await raw(JSON.stringify({ ...valid, model: `${attacker.origin}/v1/chat/completions` }), auth))
      expect(target.received).toBe(0)
      expect(attacker.received).toBe(0)
    })
  })

  it("unknown paths and methods get a JSON 404/405, and the server is still healthy", async () => {
    expectClientError(await send("", auth, "GET", "/v1/nothing"))
    const wrongMethod = await send("", auth, "DELETE", "/v1/chat/completions")
    expectClientError(wrongMethod)
    const health = await send("", {}, "GET", "/healthz")
    expect(health.status).toBe(200)
  })

  it("a slow-loris client (headers trickled) is cut at the request timeout, and the server serves others meanwhile", async () => {
    const { port, hostname } = new URL(url)
    const socket = connect(Number(port), hostname)
    const started = performance.now()
    let trickle: NodeJS.Timeout | undefined
    const closed = new Promise<string>((resolve) => {
      let answer = ""
      socket.on("data", (d) => (answer += d.toString("latin1")))
      socket.on("close", () => resolve(answer))
      socket.on("error", () => undefined)
    })
    socket.write("POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\n")
    let n = 0
    trickle = setInterval(() => {
      if (!socket.destroyed) socket.write(`X-Trickle-${n++}: ${"a".repeat(10)}\r\n`)
    }, 100)
    // Meanwhile a normal client is served.
    expect((await send(JSON.stringify(valid), auth)).status).toBe(200)
    const answer = await closed
    clearInterval(trickle)
    const elapsed = performance.now() - started
    expect(elapsed).toBeLessThan(5_000)
    // Node answers 408 (or just closes) once the request timeout passes.
    if (answer !== "") expect(answer).toMatch(/^HTTP\/1\.1 408/)
  })
})

// The same guarantees on Anthropic's Messages API (`POST /v1/messages`): its bodies and its
// headers (`x-api-key`, `anthropic-version`, `anthropic-beta`), its error shape.
describe("bad input on /v1/messages (property-based)", () => {
  const messagesPath = "/v1/messages"
  const validMessages = { model: "chat", max_tokens: 16, messages: [{ role: "user", content: "hi" }] }
  const anthropicHeaders = { "content-type": "application/json", "x-api-key": KEY, "anthropic-version": "2023-06-01" }

  /** A 4xx in Anthropic's shape: `{"type":"error","error":{"type","message"}}`. */
  const expectAnthropicError = (answer: Answer) => {
    expect(answer.status, answer.body).toBeGreaterThanOrEqual(400)
    expect(answer.status, answer.body).toBeLessThan(500)
    expect(answer.contentType).toMatch(/application\/json/)
    const parsed = JSON.parse(answer.body) as { type?: unknown; error?: { message?: unknown; type?: unknown } }
    expect(parsed.type).toBe("error")
    expect(typeof parsed.error?.type).toBe("string")
    expect(typeof parsed.error?.message).toBe("string")
    expect((parsed.error?.message as string).length).toBeGreaterThan(0)
  }

  /** A valid Messages body with one field replaced by a value of the wrong shape. */
  const withField = (field: string, value: fc.Arbitrary<unknown>) => value.map((v) => ({ ...validMessages, [field]: v }))
  const mutatedMessages = fc.oneof(
    withField("model", fc.oneof(fc.integer(), fc.constant(null), fc.constant(""), fc.array(fc.string()))),
    withField("max_tokens", fc.oneof(fc.string(), fc.integer({ max: 0 }), fc.double({ min: 0.1, max: 0.9 }), fc.constant(null))),
    withField("messages", fc.oneof(fc.string(), fc.integer(), fc.constant([]), fc.array(fc.integer(), { minLength: 1 }))),
    withField("messages", fc.array(fc.record({ role: fc.constantFrom("system", "tool", "wizard", "", "USER"), content: fc.string() }), { minLength: 1, maxLength: 3 })),
    withField("messages", fc.constant([{ role: "user", content: [{ type: "text" }] }])),
    withField("system", fc.oneof(fc.integer(), fc.constant([{ type: "text" }]))),
    withField("temperature", fc.oneof(fc.string(), fc.double({ min: 1.01, max: 1e6, noNaN: true }))),
    withField("tool_choice", fc.oneof(fc.string(), fc.record({ type: fc.constantFrom("sometimes", "tool") }))),
    withField("tools", fc.oneof(fc.string(), fc.array(fc.record({ description: fc.string() }), { minLength: 1 }))),
    withField("stream", fc.oneof(fc.string(), fc.integer())),
    fc.json().filter((j) => {
      const v = JSON.parse(j) as unknown
      return typeof v !== "object" || v === null || Array.isArray(v) || !("messages" in v)
    }).map((j) => JSON.parse(j) as unknown)
  )

  it("a Messages body of the wrong shape gets a 4xx in Anthropic's shape and never reaches the upstream", async () => {
    const before = upstream.calls.length
    await fc.assert(
      fc.asyncProperty(mutatedMessages, async (body) => {
        expectAnthropicError(await send(JSON.stringify(body), anthropicHeaders, "POST", messagesPath))
      }),
      { numRuns: 150 }
    )
    expect(upstream.calls.length).toBe(before)
  })

  it("arbitrary bytes (invalid UTF-8, truncated JSON) get a 4xx in Anthropic's shape", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ minLength: 1, maxLength: 512 }),
          fc.string().map((s) => JSON.stringify(validMessages).slice(0, Math.max(1, s.length % 40)))
        ),
        async (body) => {
          expectAnthropicError(await send(body, anthropicHeaders, "POST", messagesPath))
        }
      ),
      { numRuns: 100 }
    )
  })

  it("arbitrary x-api-key and authorization headers never pass (401 authentication_error) and never reach the upstream", async () => {
    const before = upstream.calls.length
    const notAKey = (h: string) => h.trim() !== KEY && h.trim() !== LIMITED && h.trim() !== `Bearer ${KEY}` && h.trim() !== `Bearer ${LIMITED}` && !/[\r\n]/.test(h)
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ unit: "grapheme-ascii" }).map((s) => ({ "x-api-key": s })),
          fc.constant({ "x-api-key": KEY.slice(0, -1) }),
          fc.constant({ "x-api-key": `Bearer ${KEY}` }),
          fc.string({ unit: "grapheme-ascii" }).map((s) => ({ authorization: `Bearer ${s}` })),
          fc.constant({} as Record<string, string>)
        ).filter((h) => Object.values(h).every(notAKey)),
        async (headers) => {
          const answer = await send(JSON.stringify(validMessages), { "content-type": "application/json", "anthropic-version": "2023-06-01", ...headers }, "POST", messagesPath)
          expectAnthropicError(answer)
          expect(answer.status).toBe(401)
          expect(JSON.parse(answer.body).error.type).toBe("authentication_error")
        }
      ),
      { numRuns: 100 }
    )
    expect(upstream.calls.length).toBe(before)
  })

  it("any anthropic-version and anthropic-beta is accepted and ignored: the request is served", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: "grapheme-ascii" }).filter((s) => !/[\r\n]/.test(s)),
        fc.array(fc.stringMatching(/^[a-z0-9-]{1,30}$/), { maxLength: 4 }),
        async (version, betas) => {
          const headers: Record<string, string> = { "content-type": "application/json", "x-api-key": KEY, "anthropic-version": version }
          if (betas.length > 0) headers["anthropic-beta"] = betas.join(",")
          const answer = await send(JSON.stringify(validMessages), headers, "POST", messagesPath)
          expect(answer.status, answer.body).toBe(200)
          expect(JSON.parse(answer.body).type).toBe("message")
        }
      ),
      { numRuns: 40 }
    )
  })

  it("a body not declared JSON, an oversize body, a model the key may not use and a wrong method are refused in Anthropic's shape", async () => {
    const asText = await send(JSON.stringify(validMessages), { ...anthropicHeaders, "content-type": "text/plain" }, "POST", messagesPath)
    expectAnthropicError(asText)
    expect(asText.status).toBe(415)
    const oversize = await send(JSON.stringify({ ...validMessages, messages: [{ role: "user", content: "x".repeat(64 * 1024) }] }), anthropicHeaders, "POST", messagesPath)
    expectAnthropicError(oversize)
    expect(oversize.status).toBe(413)
    expect(JSON.parse(oversize.body).error.type).toBe("request_too_large")
    const limited = await send(JSON.stringify(validMessages), { ...anthropicHeaders, "x-api-key": LIMITED }, "POST", messagesPath)
    expectAnthropicError(limited)
    expect(limited.status).toBe(403)
    expect(JSON.parse(limited.body).error.type).toBe("permission_error")
    const wrongMethod = await send("", anthropicHeaders, "GET", messagesPath)
    expectAnthropicError(wrongMethod)
    expect(wrongMethod.status).toBe(405)
  })
})

describe("deeply nested and huge unknown fields (property-based)", () => {
  // A gateway with the default 4 MiB body limit, so that unknown fields can exceed their own limit.
  let bigUrl = ""
  let bigScope: Scope.CloseableScope
  const fake = FakeLanguageModel.make()
  beforeAll(async () => {
    bigScope = Effect.runSync(Scope.make())
    const config = await Effect.runPromise(ConfigLoader.fromObject({
      auth: { keys: [{ name: "all", key: KEY }] },
      upstreams: { up: { provider: "openai", baseUrl: "http://127.0.0.1:9/v1" } },
      routes: { chat: { upstreams: ["up"] } }
    }, {}))
    const gateway = await Effect.runPromise(Scope.extend(GatewayBuilder.make(config, { adapters: { up: fake.model } }), bigScope))
    bigUrl = (await Effect.runPromise(Scope.extend(HttpHost.serve(gateway, { port: 0, logLevel: "none" }), bigScope))).url
  })
  afterAll(async () => {
    await Effect.runPromise(Scope.close(bigScope, Exit.void))
  })
  const post = (body: string) =>
    fetch(`${bigUrl}/v1/chat/completions`, { method: "POST", headers: auth, body }).then(async (res) => ({
      status: res.status,
      contentType: res.headers.get("content-type") ?? "",
      body: await res.text()
    }))

  /** A JSON value nested `depth` levels: arrays, objects or both, alternating. */
  const nestedJson = (depth: number, kind: "array" | "object" | "mixed"): string => {
    let open = ""
    let close = ""
    for (let i = 0; i < depth; i++) {
      const array = kind === "array" || (kind === "mixed" && i % 2 === 0)
      open += array ? "[" : "{\"k\":"
      close = (array ? "]" : "}") + close
    }
    return `${open}0${close}`
  }
  /** Where the value goes: top level, inside a message, inside a tool's parameters. */
  const place = (value: string, where: "top" | "message" | "tool", stream: boolean): string => {
    const head = `"model":"chat"${stream ? ",\"stream\":true" : ""}`
    switch (where) {
      case "top":
        return `{${head},"messages":[{"role":"user","content":"hi"}],"extra":${value}}`
      case "message":
        return `{${head},"messages":[{"role":"user","content":"hi","meta":${value}}]}`
      case "tool":
        return `{${head},"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"p":${value}}}}]}`
    }
  }

  it("a value nested deeper than 64 levels anywhere is a 400 naming the limit, and never reaches the upstream", async () => {
    const before = fake.calls.length
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 65, max: 50_000 }),
        fc.constantFrom("array" as const, "object" as const, "mixed" as const),
        fc.constantFrom("top" as const, "message" as const, "tool" as const),
        fc.boolean(),
        async (depth, kind, where, stream) => {
          const answer = await post(place(nestedJson(depth, kind), where, stream))
          expectClientError(answer)
          expect(answer.status).toBe(400)
          expect(answer.body).toMatch(/nested deeper than 64 levels/)
        }
      ),
      { numRuns: 60 }
    )
    expect(fake.calls.length).toBe(before)
  })

  it("nesting within the limit is served", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 58 }), fc.constantFrom("array" as const, "object" as const, "mixed" as const), async (depth, kind) => {
        const answer = await post(place(nestedJson(depth, kind), "tool", false))
        expect(answer.status, answer.body).toBe(200)
      }),
      { numRuns: 20 }
    )
  })

  it("unknown fields over 1 MiB in all (in any split, top-level or in messages) are a 400, and never reach the upstream", async () => {
    const before = fake.calls.length
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ where: fc.constantFrom("top" as const, "message" as const), size: fc.integer({ min: 1, max: 1_200_000 }) }), { minLength: 1, maxLength: 4 })
          // Over the unknown-field limit, under the 4 MiB body limit (past it the answer is a 413).
          .filter((fields) => {
            const total = fields.reduce((n, f) => n + f.size, 0)
            return total > 1024 * 1024 + 64 && total < 4 * 1024 * 1024 - 4096
          }),
        async (fields) => {
          const body: Record<string, unknown> = { model: "chat", messages: [{ role: "user", content: "hi" }] }
          const message = (body.messages as Array<Record<string, unknown>>)[0]!
          fields.forEach((f, i) => ((f.where === "top" ? body : message)[`unknown_${i}`] = "u".repeat(f.size)))
          const answer = await post(JSON.stringify(body))
          expectClientError(answer)
          expect(answer.status).toBe(400)
          expect(answer.body).toMatch(/unknown fields take \d+ characters, more than the 1048576 allowed/)
        }
      ),
      { numRuns: 20 }
    )
    expect(fake.calls.length).toBe(before)
  })
})
