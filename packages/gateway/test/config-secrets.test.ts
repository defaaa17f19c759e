/**
 * Issue #17, finding 4: a config error never prints a secret. Every secret field holds a canary
 * (through `${ENV}` substitution, and written inline); each broken config must fail with issues
 * that name the problem by path, and no text of the error may contain any canary in any form.
 */
import { ConfigLoader } from "@breakwater/gateway"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { inspect } from "node:util"

const canaries = {
  GW_KEY_A: "gw-canary-key-aaaa-1111",
  GW_KEY_B: "gw-canary-key-bbbb-2222",
  OPENAI_API_KEY: "sk-canary-openai-3333",
  ANTHROPIC_API_KEY: "sk-ant-canary-4444",
  REDIS_PASSWORD: "canary-redis-pw-5555",
  // A value a formatter must escape: a JSON-quoted message would otherwise hide it from a plain match.
  ODD_KEY: "canary\"odd\\key-6666"
}
const inline = { key: "gw-inline-canary-7777", apiKey: "sk-inline-canary-8888", url: "redis://:inline-canary-pw-9999@127.0.0.1:6379" }
const all = [...Object.values(canaries), inline.key, inline.apiKey, "inline-canary-pw-9999"]

const keys = [
  { name: "a", key: "${GW_KEY_A}" },
  { name: "b", key: "${GW_KEY_B}", models: ["m"] },
  { name: "odd", key: "${ODD_KEY}" }
]
const upstreams = {
  openai: { provider: "openai", apiKey: "${OPENAI_API_KEY}", models: ["m"] },
  claude: { provider: "anthropic", apiKey: "${ANTHROPIC_API_KEY}", models: ["m"] }
}
const base = {
  auth: { keys },
  upstreams,
  routes: { m: { upstreams: ["openai", "claude"] } },
  redis: { url: "redis://:${REDIS_PASSWORD}@127.0.0.1:6379", prefix: "bw:" }
}

const broken: ReadonlyArray<readonly [string, unknown, string]> = [
  ["a bad key name", { ...base, auth: { keys: [...keys, { name: "bad name!", key: "${GW_KEY_A}" }] } }, "auth.keys.3.name"],
  ["a bad redis.prefix", { ...base, redis: { url: "redis://:${REDIS_PASSWORD}@127.0.0.1:6379", prefix: 42 } }, "redis.prefix"],
  ["upstreams written as an array", { ...base, upstreams: [{ name: "openai", ...upstreams.openai }, upstreams.claude] }, "upstreams"],
  ["auth.keys written as an object", { ...base, auth: { keys: { a: "${GW_KEY_A}", b: "${GW_KEY_B}" } } }, "auth.keys"],
  ["a gateway key that is not a string", { ...base, auth: { keys: [{ name: "a", key: ["${GW_KEY_A}", "${ODD_KEY}"] }] } }, "auth.keys.0.key"],
  ["an apiKey that is an object", { ...base, upstreams: { ...upstreams, openai: { provider: "openai", apiKey: { v: "${OPENAI_API_KEY}" } } } }, "upstreams.openai.apiKey"],
  ["redis written as a string", { ...base, redis: "redis://:${REDIS_PASSWORD}@127.0.0.1:6379" }, "redis"],
  ["an unknown field beside the secrets", { ...base, redis: { ...base.redis, password: "${REDIS_PASSWORD}" } }, "redis.password"],
  ["a baseUrl carrying a key", { ...base, upstreams: { ...upstreams, openai: { ...upstreams.openai, baseUrl: "ftp://x/?key=${OPENAI_API_KEY}" } } }, "upstreams.openai.baseUrl"],
  ["inline secrets (no references) in a broken config", {
    auth: { keys: [{ name: "bad name!", key: inline.key }] },
    upstreams: [{ provider: "openai", apiKey: inline.apiKey }],
    routes: {},
    redis: { url: inline.url, prefix: 42 }
  }, "upstreams"]
]

const forms = (secret: string) => [secret, JSON.stringify(secret).slice(1, -1), encodeURIComponent(secret), Buffer.from(secret).toString("base64")]

describe("ConfigLoader never prints a secret", () => {
  it.effect("the canary config itself is valid (every canary is in a secret field that is used)", () =>
    Effect.gen(function*() {
      const config = yield* ConfigLoader.fromObject(base, canaries)
      expect(config.auth?.keys).toHaveLength(3)
    }))

  it.effect.each(broken)("%s: the issue is reported by path, and no canary appears in any form", ([, input, path]) =>
    Effect.gen(function*() {
      const result = yield* Effect.either(ConfigLoader.fromObject(input, canaries))
      expect(Either.isLeft(result)).toBe(true)
      if (Either.isRight(result)) return
      const error = result.left
      expect(error.issues.map((i) => i.path)).toContain(path)
      const texts = [error.message, JSON.stringify(error.issues), inspect(error, { depth: 10 }), String(error)]
      for (const text of texts) for (const secret of all) for (const form of forms(secret)) expect(text).not.toContain(form)
    }))
})
