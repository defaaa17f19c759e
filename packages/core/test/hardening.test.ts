/**
 * Issue #17 (hardening), core's part: request bodies bounded in depth and in unknown fields,
 * the gateway's own failures never held against an upstream, redirects are errors, and
 * upstream error text scrubbed in every encoding of a secret before it may reach a client.
 */
import { AdapterKit, ChatCompletion, ModelError } from "@breakwater/core"
import { describe, expect, it } from "@effect/vitest"
import { Either, Redacted } from "effect"

const valid = { model: "m", messages: [{ role: "user", content: "hi" }] }

/** `{"x":{"x":…}}` nested `depth` levels below the value it is put in. */
const nested = (depth: number): unknown => {
  let value: unknown = 1
  for (let i = 0; i < depth; i++) value = { x: value }
  return value
}

describe("ChatCompletion.decodeChatRequest limits", () => {
  it("refuses an unknown field nested 5,000 levels deep (and 100,000: the check itself never overflows)", () => {
    for (const depth of [5_000, 100_000]) {
      const result = ChatCompletion.decodeChatRequest({ ...valid, extra: nested(depth) })
      expect(Either.isLeft(result)).toBe(true)
      expect(Either.isLeft(result) && result.left).toMatch(/nested deeper than 64 levels/)
    }
  })

  it("refuses deep nesting inside a message or a tool's parameters too", () => {
    const inMessage = { ...valid, messages: [{ role: "user", content: "hi", meta: nested(100) }] }
    const inTool = { ...valid, tools: [{ type: "function", function: { name: "f", parameters: { p: nested(100) } } }] }
    for (const body of [inMessage, inTool]) expect(Either.isLeft(ChatCompletion.decodeChatRequest(body))).toBe(true)
  })

  it("accepts what real clients send: a tool schema 20 levels deep, a few unknown fields", () => {
    const body = {
      ...valid,
      tools: [{ type: "function", function: { name: "f", parameters: { type: "object", properties: nested(20) } } }],
      metadata: { user: "u1" },
      service_tier: "auto"
    }
    expect(Either.isRight(ChatCompletion.decodeChatRequest(body))).toBe(true)
  })

  it("refuses more than 1 MiB of unknown fields, top-level or in messages, and names the limit", () => {
    const big = "x".repeat(1024 * 1024)
    const top = { ...valid, blob: big }
    const inMessage = { ...valid, messages: [{ role: "user", content: "hi", blob: big }] }
    const spread = { ...valid, a: big.slice(0, 600_000), messages: [{ role: "user", content: "hi", b: big.slice(0, 600_000) }] }
    for (const body of [top, inMessage, spread]) {
      const result = ChatCompletion.decodeChatRequest(body)
      expect(Either.isLeft(result) && result.left).toMatch(/unknown fields take \d+ characters, more than the 1048576 allowed/)
    }
    // Known fields do not count: a long prompt is the client's business (the body limit bounds it).
    expect(Either.isRight(ChatCompletion.decodeChatRequest({ ...valid, messages: [{ role: "user", content: big }] }))).toBe(true)
  })

  it("takes other limits", () => {
    const limits = { maxDepth: 3, maxUnknownFieldChars: 10 }
    expect(Either.isLeft(ChatCompletion.decodeChatRequest({ ...valid, extra: nested(3) }, limits))).toBe(true)
    expect(Either.isLeft(ChatCompletion.decodeChatRequest({ ...valid, extra: "01234567890" }, limits))).toBe(true)
    expect(Either.isRight(ChatCompletion.decodeChatRequest(valid, limits))).toBe(true)
  })
})

describe("ModelError: the gateway's own failures", () => {
  it("LocalFailure is a 500 that is never retried, failed over, or held against an upstream", () => {
    const error = ModelError.localFailure("the request could not be encoded", new RangeError("Maximum call stack size exceeded"), "u")
    expect(error).toMatchObject({ _tag: "LocalFailure", retryable: false, failover: false, httpStatus: 500 })
    expect(error.message).not.toMatch(/call stack/)
    expect(ModelError.countsAgainstUpstream(error)).toBe(false)
    // Anything that is not a taxonomy error (a defect) is local too.
    expect(ModelError.countsAgainstUpstream(new RangeError("boom"))).toBe(false)
    expect(ModelError.countsAgainstUpstream(new ModelError.UpstreamUnavailable({ message: "x" }))).toBe(true)
  })

  it("a 3xx is an upstream error, not a success nor the client's fault", () => {
    for (const status of [301, 302, 303, 307, 308]) {
      const error = ModelError.fromHttpFailure({ status, message: "moved", upstream: "u" })
      expect(error._tag).toBe("UpstreamUnavailable")
      expect(error.code).toBe("upstream_redirect")
    }
  })
})

describe("AdapterKit: upstream error text", () => {
  const CANARY = "sk-canary-Zq81kLm2Xv90aBcD"
  const scrub = AdapterKit.scrubber(Redacted.make(CANARY))
  const read = (body: unknown) => AdapterKit.errorReader(scrub)(body, JSON.stringify(body))

  it("scrubs the key as is, URL-encoded and base64 at every alignment (standard and URL-safe)", () => {
    const forms = [
      CANARY,
      encodeURIComponent(CANARY),
      Buffer.from(`Bearer ${CANARY}`).toString("base64"),
      Buffer.from(`x:${CANARY}`).toString("base64"),
      Buffer.from(`${CANARY}`).toString("base64url"),
      Buffer.from(`ab${CANARY}?`).toString("base64url")
    ]
    for (const form of forms) {
      const message = read({ error: { message: `invalid credentials ${form} for host`, type: "invalid_request_error" } }).message ?? ""
      expect(message).toMatch(/^invalid credentials .*\[redacted\]/)
      // What is left of a base64 form may not decode back to any 6 consecutive characters of the key.
      const rest = message.replace("invalid credentials ", "").replace(" for host", "")
      for (const piece of rest.split("[redacted]")) {
        for (const decoded of [piece, Buffer.from(piece, "base64").toString("latin1"), Buffer.from(piece, "base64url").toString("latin1")]) {
          for (let i = 0; i + 6 <= CANARY.length; i++) expect(decoded).not.toContain(CANARY.slice(i, i + 6))
        }
      }
    }
  })

  it("scrubs every configured secret and key-shaped text with scrubSecrets", () => {
    const other = "gw-secret-key-0000000042"
    const text = `a ${other} b ${Buffer.from(other).toString("base64")} c sk-ant-abcdefgh12345 d`
    const out = AdapterKit.scrubSecrets(text, [other])
    expect(out).not.toContain(other)
    expect(out).not.toContain(Buffer.from(other).toString("base64").slice(4, 20))
    expect(out).not.toContain("sk-ant-abcdefgh")
  })

  it("passes only the provider's message, capped; markup and stack text are dropped", () => {
    expect(read({ error: { message: "m".repeat(5000) } }).message).toHaveLength(513)
    expect(read({ error: { message: "<html><body>502 Bad Gateway at internal-lb-7.corp</body></html>" } }).message).toBeUndefined()
    expect(read({ error: { message: "TypeError: x is undefined\n    at handler (/srv/app/api.js:42:13)" } }).message).toBeUndefined()
    expect(read({ error: { message: "Traceback (most recent call last):\n  File \"/srv/app.py\", line 3" } }).message).toBeUndefined()
    expect(read({ detail: "internal host db-3.corp.internal refused" }).message).toBeUndefined()
    expect(read({ error: { message: "max_tokens is too large", code: "invalid_value" } })).toEqual({
      message: "max_tokens is too large",
      code: "invalid_value"
    })
    // A code is an identifier; free text in its place is not passed on.
    expect(read({ error: { message: "x", code: "see http://internal/trace?id=1 for details" } }).code).toBeUndefined()
  })
})
