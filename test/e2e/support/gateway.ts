/**
 * Starts a gateway over real HTTP in front of two mock upstreams (OpenAI wire format first,
 * Anthropic second), the way the reference server does, with logs captured for inspection.
 */
import { ConfigLoader, GatewayBuilder } from "@breakwater/gateway"
import type { Gateway } from "@breakwater/gateway"
import { HttpHost } from "@breakwater/host-http"
import { MockUpstream } from "@breakwater/testing"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"

export const CANARY = "sk-canary-5e1f0c2a9b7d4e3f8a6b"
export const GATEWAY_KEY = "gw-test-key-0001"
/** The operator key: `/metrics` and the `/readyz` detail need it (client keys are configured). */
export const ADMIN_KEY = "gw-admin-key-0123456789"
export const asAdmin = { headers: { authorization: `Bearer ${ADMIN_KEY}` } }

export interface TestGateway {
  readonly url: string
  readonly gateway: Gateway.Gateway
  readonly primary: MockUpstream.MockUpstream
  readonly secondary: MockUpstream.MockUpstream
  readonly logs: Array<string>
  readonly close: () => Promise<void>
}

export const startGateway = async (options: {
  readonly auth?: boolean
  readonly config?: (primary: string, secondary: string) => Record<string, unknown>
} = {}): Promise<TestGateway> => {
  const primary = await MockUpstream.start({ words: 40 })
  const secondary = await MockUpstream.start({ words: 40 })
  const input = options.config?.(primary.url, secondary.origin) ?? {
    ...(options.auth === false ? {} : { auth: { keys: [{ name: "tests", key: GATEWAY_KEY }], adminKey: ADMIN_KEY } }),
    server: { maxBodyBytes: 64 * 1024 },
    upstreams: {
      primary: { provider: "openai", baseUrl: primary.url, apiKey: "${CANARY_KEY}", models: ["chat"] },
      secondary: { provider: "anthropic", baseUrl: secondary.origin, apiKey: "${CANARY_KEY}", models: { chat: "claude-mock" } }
    },
    routes: { chat: { upstreams: ["primary", "secondary"] }, solo: { upstreams: ["primary"] } },
    defaults: {
      retry: { baseDelay: "1 millis", maxDelay: "5 millis", maxRetryAfter: "2 seconds" },
      timeouts: { firstToken: "2 seconds", idle: "500 millis" },
      breaker: { minimumCalls: 50 }
    }
  }
  const scope = Effect.runSync(Scope.make())
  const logs: Array<string> = []
  const config = await Effect.runPromise(ConfigLoader.fromObject(input, { CANARY_KEY: CANARY }))
  const gateway = await Effect.runPromise(Scope.extend(GatewayBuilder.make(config), scope))
  const running = await Effect.runPromise(
    Scope.extend(HttpHost.serve(gateway, { port: 0, log: (line) => logs.push(JSON.stringify(line)), logLevel: "debug" }), scope)
  )
  return {
    url: running.url,
    gateway,
    primary,
    secondary,
    logs,
    close: async () => {
      await Effect.runPromise(Scope.close(scope, Exit.void))
      await Promise.all([primary.stop(), secondary.stop()])
    }
  }
}

/**
 * A gateway with the default policies whose one route, `chat`, goes to the OpenAI-compatible
 * upstream at `origin` (a test's own server), built in `scope`.
 */
export const gatewayOver = (origin: string, scope: Scope.Scope): Promise<Gateway.Gateway> =>
  Effect.runPromise(Effect.flatMap(
    ConfigLoader.fromObject({
      upstreams: { up: { provider: "openai", baseUrl: `${origin}/v1`, models: ["chat"] } },
      routes: { chat: { upstreams: ["up"] } }
    }, {}),
    (config) => Scope.extend(GatewayBuilder.make(config), scope)
  ))
