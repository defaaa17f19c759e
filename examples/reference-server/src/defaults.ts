/**
 * The reference server's embedded configs: a local mock upstream when no provider key is set,
 * or the real providers whose keys are in the environment.
 */
import type { GatewayConfig } from "@breakwater/gateway"

/** Two mock upstreams (OpenAI and Anthropic wire formats) behind one fallback route. */
export const mockConfig = (mockUrl: string, port: number): GatewayConfig.GatewayConfigInput => ({
  server: { port },
  upstreams: {
    "mock-openai": { provider: "openai", baseUrl: `${mockUrl}/v1`, models: ["breakwater-demo", "gpt-4o-mini"] },
    "mock-anthropic": {
      provider: "anthropic",
      baseUrl: mockUrl,
      models: { "breakwater-demo": "claude-mock", "gpt-4o-mini": "claude-mock" }
    }
  },
  routes: {
    "breakwater-demo": { upstreams: ["mock-openai", "mock-anthropic"] },
    "gpt-4o-mini": { upstreams: ["mock-openai", "mock-anthropic"] }
  }
})

/** Real providers, for whichever keys are set; OpenAI falls back to Anthropic and back. */
export const providerConfig = (env: Readonly<Record<string, string | undefined>>, port: number): GatewayConfig.GatewayConfigInput => {
  const upstreams: Record<string, GatewayConfig.GatewayConfigInput["upstreams"][string]> = {}
  const routes: Record<string, GatewayConfig.GatewayConfigInput["routes"][string]> = {}
  const openai = env["OPENAI_API_KEY"] !== undefined && env["OPENAI_API_KEY"] !== ""
  const anthropic = env["ANTHROPIC_API_KEY"] !== undefined && env["ANTHROPIC_API_KEY"] !== ""
  if (openai) {
    upstreams["openai"] = { provider: "openai", apiKey: "${OPENAI_API_KEY}", models: ["gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "gpt-4.1"] }
  }
  if (anthropic) {
    upstreams["anthropic"] = {
      provider: "anthropic",
      apiKey: "${ANTHROPIC_API_KEY}",
      models: { "claude-sonnet": "claude-sonnet-4-5", "claude-haiku": "claude-haiku-4-5", ...(openai ? { "gpt-4o-mini": "claude-haiku-4-5" } : {}) }
    }
  }
  if (openai) {
    for (const m of ["gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "gpt-4.1"]) {
      routes[m] = { upstreams: anthropic && m === "gpt-4o-mini" ? ["openai", "anthropic"] : ["openai"] }
    }
  }
  if (anthropic) {
    routes["claude-sonnet"] = { upstreams: ["anthropic"] }
    routes["claude-haiku"] = { upstreams: ["anthropic"] }
  }
  return { server: { port }, upstreams, routes }
}
