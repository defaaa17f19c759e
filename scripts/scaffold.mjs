// One-off scaffolding of package skeletons (kept for adding packages consistently).
import { mkdirSync, writeFileSync, existsSync } from "node:fs"
const pkgs = {
  core: { deps: [], ext: { "eventsource-parser": "^3.0.3", undici: "^6.29.1" }, desc: "Canonical chat model, LanguageModel service, error taxonomy, request context, SSE codec and upstream HTTP transport for Breakwater." },
  testing: { deps: ["core"], ext: {}, desc: "Fault-injecting mock upstream (OpenAI and Anthropic wire formats) and fake LanguageModel for testing Breakwater and apps built on it." },
  retry: { deps: ["core"], ext: {}, desc: "Retry policy for LLM calls: backoff with jitter, Retry-After honoured, retry budget, streams retried only before their first chunk." },
  timeout: { deps: ["core"], ext: {}, desc: "Timeout policies for LLM calls: total deadline, connect/headers, time-to-first-token and idle timeouts." },
  "circuit-breaker": { deps: ["core"], ext: {}, desc: "Circuit breaker policy for LLM upstreams: sliding windows, failure and slow-call rates, half-open probes." },
  router: { deps: ["core"], ext: {}, desc: "Routing policy for LLM upstreams: fallback, weighted, least-latency, least-in-flight, hedging, bulkheads." },
  "stream-resume": { deps: ["core"], ext: {}, desc: "Stream resume for LLM streams: continue broken upstream streams as one stable client stream; client reconnect with Last-Event-ID." },
  "provider-openai": { deps: ["core"], ext: {}, desc: "OpenAI Chat Completions (and OpenAI-compatible servers) adapter for Breakwater." },
  "provider-anthropic": { deps: ["core"], ext: {}, desc: "Anthropic Messages API adapter for Breakwater." },
  gateway: { deps: ["core", "retry", "timeout", "circuit-breaker", "router", "stream-resume", "provider-openai", "provider-anthropic"], ext: {}, desc: "Breakwater gateway: config schema and the default reliability baseline, built into a LanguageModel stack." },
  "host-http": { deps: ["core", "gateway"], ext: {}, desc: "Node HTTP host for the Breakwater gateway: OpenAI-compatible API, auth, limits, health, metrics, graceful shutdown." },
  "host-lambda": { deps: ["core", "gateway"], ext: {}, desc: "AWS Lambda handler for the Breakwater gateway, buffered and response-streaming." },
  "store-redis": { deps: ["core", "circuit-breaker", "retry", "stream-resume"], ext: { ioredis: "^5.8.2" }, desc: "Redis stores for Breakwater: shared breaker state, retry budget and client-resume journal across instances." }
}
for (const [name, p] of Object.entries(pkgs)) {
  const dir = `packages/${name}`
  mkdirSync(`${dir}/src/internal`, { recursive: true })
  mkdirSync(`${dir}/test`, { recursive: true })
  const dependencies = { effect: "~3.22.4", ...p.ext }
  for (const d of p.deps) dependencies[`@breakwater/${d}`] = "0.0.0"
  writeFileSync(`${dir}/package.json`, JSON.stringify({
    name: `@breakwater/${name}`,
    version: "0.0.0",
    description: p.desc,
    license: "MIT",
    type: "module",
    sideEffects: false,
    exports: { ".": { types: "./dist/index.d.ts", default: "./dist/index.js" } },
    files: ["dist", "src", "README.md"],
    scripts: { build: "tsc -b", typecheck: "tsc -b", test: `cd ../.. && vitest run packages/${name}/` },
    dependencies
  }, null, 2) + "\n")
  writeFileSync(`${dir}/tsconfig.json`, JSON.stringify({
    extends: "../../tsconfig.base.json",
    compilerOptions: { rootDir: "src", outDir: "dist", tsBuildInfoFile: "tsconfig.tsbuildinfo" },
    include: ["src"],
    references: p.deps.map((d) => ({ path: `../${d}` }))
  }, null, 2) + "\n")
  if (!existsSync(`${dir}/src/index.ts`)) writeFileSync(`${dir}/src/index.ts`, `/**\n * @since 0.1.0\n */\nexport {}\n`)
}
