/**
 * Use 1 of Breakwater: a gateway composed by hand, in code, from the policy packages — the same
 * stack `GatewayBuilder` builds from a config, written out so each piece can be swapped.
 *
 *   deadline → stream-resume → retry → router ─┬─ "primary":   breaker → attempt timeout → OpenAI adapter
 *                                              └─ "secondary": breaker → attempt timeout → OpenAI adapter
 */
import { CircuitBreaker } from "@breakwater/circuit-breaker"
import type { Gateway } from "@breakwater/gateway"
import { OpenAiProvider } from "@breakwater/provider-openai"
import { Retry } from "@breakwater/retry"
import { Router } from "@breakwater/router"
import { StreamResume } from "@breakwater/stream-resume"
import { AttemptTimeout, Deadline } from "@breakwater/timeout"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"

export interface Upstreams {
  readonly primary: string
  readonly secondary: string
}

export const makeGateway = (baseUrls: Upstreams): Effect.Effect<Gateway.Gateway, never, Scope.Scope> =>
  Effect.gen(function*() {
    const breakers = yield* CircuitBreaker.make({ minimumCalls: 5, openDuration: "15 seconds" })
    const upstream = (name: keyof Upstreams) =>
      Effect.gen(function*() {
        const adapter = yield* OpenAiProvider.make({ name, baseUrl: baseUrls[name] })
        const timed = yield* AttemptTimeout.withPolicy(adapter, { firstToken: "10 seconds", idle: "5 seconds" })
        return { name, model: breakers.wrap(name, timed), isAvailable: (key: string) => breakers.isAvailable(key) }
      })
    const routed = yield* Router.make({ strategy: "fallback", upstreams: [yield* upstream("primary"), yield* upstream("secondary")] })
    const retried = yield* Retry.withPolicy(routed, { maxRetries: 2, baseDelay: "100 millis" })
    const resumed = yield* StreamResume.withPolicy(retried, { maxResumes: 3 })
    const model = yield* Deadline.withPolicy(resumed, { total: "60 seconds" })
    return {
      model,
      models: ["assistant"],
      keys: [],
      server: {
        host: "127.0.0.1",
        port: Number(process.env["PORT"] ?? 8788),
        maxBodyBytes: 1024 * 1024,
        maxHeaderBytes: 16 * 1024,
        maxConcurrentRequests: 1024,
        requestTimeoutMs: 30_000,
        shutdownGraceMs: 10_000,
        streamCommitTimeoutMs: 10_000,
        detachGraceMs: 0
      },
      health: Effect.sync(() => {
        const states = breakers.snapshot()
        const upstreams = (["primary", "secondary"] as const).map((name) => ({ name, provider: "openai", circuit: states[name] ?? "closed" }))
        const ready = upstreams.some((u) => u.circuit !== "open")
        return { ready, upstreams, routes: [{ model: "assistant", ready }] }
      }),
      secrets: []
    }
  })
