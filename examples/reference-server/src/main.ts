/**
 * The Breakwater reference server.
 *
 *   node dist/main.js [config.json]
 *
 * - With a config file (argument or BREAKWATER_CONFIG), it serves exactly that config.
 * - Else with OPENAI_API_KEY and/or ANTHROPIC_API_KEY set, it serves those providers.
 * - Else it starts a local mock upstream and serves it behind the full reliability baseline,
 *   so it works with no keys at all. BREAKWATER_CHAOS=0.2 makes 20% of upstream calls fail or
 *   break mid-stream, to watch the gateway absorb them on the status page (/status).
 *
 * It first sets the V8 flags a gateway process runs best with (`V8Flags.apply`: allocation-site
 * pretenuring off); a flag given on the command line or in NODE_OPTIONS, in either polarity, wins.
 *
 * PORT (default 8787), HOST and BREAKWATER_LOG_LEVEL (debug|info|warning|error|none) apply to
 * all: PORT and HOST override the config file's `server.port` / `server.host` (a platform that
 * assigns the port says so in PORT, whatever the file says).
 */
import { V8Flags } from "@breakwater/core"
import { ConfigLoader, GatewayBuilder } from "@breakwater/gateway"
import { HttpHost } from "@breakwater/host-http"
import { MockUpstream } from "@breakwater/testing"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import { mockConfig, providerConfig } from "./defaults.js"

V8Flags.apply()

const { Fault } = MockUpstream

const env = process.env
const given = (name: string) => (env[name] ?? "") === "" ? undefined : env[name]
const portText = given("PORT")
if (portText !== undefined && !/^\d{1,5}$/.test(portText)) {
  process.stderr.write(`PORT must be a port number (0-65535), got ${JSON.stringify(portText.slice(0, 32))}\n`)
  process.exit(1)
}
/** From the environment, when set: it wins over the config file's `server` section. */
const listen = { port: portText === undefined ? undefined : Number(portText), host: given("HOST") }
const port = listen.port ?? 8787
const logLevel = (env["BREAKWATER_LOG_LEVEL"] ?? "info") as HttpHost.Options["logLevel"]
const say = (line: string) => {
  if (logLevel !== "none") process.stderr.write(`${line}\n`)
}

const chaosFaults: ReadonlyArray<MockUpstream.Behavior> = [
  { fault: Fault.Status({ status: 503 }) },
  { fault: Fault.Status({ status: 429 }), headers: { "retry-after": "1" } },
  { fault: Fault.Status({ status: 529 }) },
  { fault: Fault.Cut({ afterChunks: 5 }) },
  { fault: Fault.ErrorEvent({ afterChunks: 8 }) },
  { fault: Fault.ResetBeforeHeaders() }
]

const program = Effect.gen(function*() {
  const configPath = [process.argv[2], env["BREAKWATER_CONFIG"]].find((p) => p !== undefined && p !== "")
  const hasKeys = (env["OPENAI_API_KEY"] ?? "") !== "" || (env["ANTHROPIC_API_KEY"] ?? "") !== ""
  let mode: string
  let config
  if (configPath !== undefined) {
    config = yield* ConfigLoader.fromFile(configPath)
    mode = `config file ${configPath}`
  } else if (hasKeys) {
    config = yield* ConfigLoader.fromObject(providerConfig(env, port))
    mode = "provider keys from the environment"
  } else {
    const mock = yield* MockUpstream.scoped({ words: 60, chunkDelayMs: 15, maxRequests: 1_000 })
    const chaos = Number(env["BREAKWATER_CHAOS"] ?? 0)
    if (chaos > 0) mock.chaos({ rate: Math.min(1, chaos), behaviors: chaosFaults, seed: 42 })
    config = yield* ConfigLoader.fromObject(mockConfig(mock.origin, port))
    mode = `embedded default: a local mock upstream at ${mock.origin}${chaos > 0 ? ` with ${Math.round(chaos * 100)}% chaos` : ""}`
  }
  const gateway = yield* GatewayBuilder.make(config)
  const statusPage = env["BREAKWATER_STATUS_PAGE"] !== "off"
  const running = yield* HttpHost.serve(gateway, { logLevel, statusPage, ...listen })
  const model = gateway.models[0] ?? "breakwater-demo"
  const auth = gateway.keys.length > 0 ? ` -H 'authorization: Bearer <gateway key>'` : ""
  say(`Breakwater gateway listening on ${running.url} (${mode})`)
  say(`  models: ${gateway.models.join(", ")}`)
  say(`  try:    curl -s ${running.url}/v1/chat/completions -H 'content-type: application/json'${auth} -d '{"model":"${model}","messages":[{"role":"user","content":"Hello"}],"stream":true}'`)
  say(`  SDKs:   new OpenAI({ baseURL: "${running.url}/v1", apiKey: "${gateway.keys.length > 0 ? "<gateway key>" : "unused"}" })`)
  if (statusPage) say(`  status: ${running.url}/status${gateway.keys.length > 0 ? "?key=<admin key>" : ""}  (live page: breakers, retries, fallbacks, resumes, latency, recent requests)`)
  say(`  ops:    ${running.url}/healthz  ${running.url}/readyz  ${running.url}/metrics`)
  if (!hasKeys && configPath === undefined) {
    say("  real providers: set OPENAI_API_KEY and/or ANTHROPIC_API_KEY, or pass a config file (see examples/reference-server/README.md)")
  }
  return yield* Effect.never
})

const fiber = Effect.runFork(Effect.scoped(program).pipe(Effect.provide(NodeFileSystem.layer)))
let stopping = false
const stop = (signal: string) => {
  if (stopping) return
  stopping = true
  say(`${signal}: draining streams, then exiting`)
  // Interrupting the program closes its scope: the host drains, then the pools and mock close.
  Effect.runFork(Fiber.interrupt(fiber))
}
process.once("SIGTERM", () => stop("SIGTERM"))
process.once("SIGINT", () => stop("SIGINT"))
fiber.addObserver((exit) => {
  if (Exit.isFailure(exit) && !Exit.isInterrupted(exit)) {
    const failure = exit.cause
    process.stderr.write(`${failure._tag === "Fail" && failure.error instanceof Error ? failure.error.message : String(failure)}\n`)
    process.exit(1)
  }
  process.exit(0)
})
