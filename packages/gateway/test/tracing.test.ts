/**
 * The config's `telemetry` section and how the builder plugs tracing in: the telemetry package is
 * loaded only when the config (or `OTEL_TRACES_EXPORTER=otlp`) turns tracing on, and the
 * pipeline's `observe` is then the tracer's. The module loaded here is a stand-in, so the test
 * reads what the gateway asks of `@breakwater/telemetry`, not OpenTelemetry itself.
 */
import { ConfigLoader, GatewayBuilder, RequestPipeline, Tracing } from "@breakwater/gateway"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit } from "effect"

const base = {
  upstreams: { primary: { provider: "openai", baseUrl: "http://127.0.0.1:9", models: ["chat"] } },
  routes: { chat: { upstreams: ["primary"] } }
}

/** A stand-in for the telemetry package's module: records what it was made with and its shutdown. */
const standIn = () => {
  const made: Array<{ readonly options: unknown; readonly providers: Record<string, string> }> = []
  let shutdowns = 0
  const module: Tracing.TelemetryModule = {
    Telemetry: {
      make: (options, more) => {
        made.push({ options, providers: Object.fromEntries(Object.entries(more.upstreams ?? {}).map(([k, v]) => [k, v.provider])) })
        return {
          request: (info) => ({ attempt: () => undefined, event: () => {}, end: () => {}, id: info.requestId }) as Tracing.RequestSpan,
          flush: () => Promise.resolve(),
          shutdown: () => {
            shutdowns++
            return Promise.resolve()
          }
        }
      }
    }
  }
  return { module, made, shutdowns: () => shutdowns }
}

describe("the telemetry section", () => {
  it.effect("is TelemetryOptions: off by default, validated with the rest of the config", () =>
    Effect.gen(function*() {
      const plain = yield* ConfigLoader.fromObject(base, {})
      expect(plain.telemetry).toBeUndefined()
      expect(Tracing.enabled(plain, {})).toBe(false)
      const on = yield* ConfigLoader.fromObject({ ...base, telemetry: { enabled: true, serviceName: "gw-eu" } }, {})
      expect(on.telemetry).toEqual({ enabled: true, captureContent: false, serviceName: "gw-eu" })
      expect(Tracing.enabled(on, {})).toBe(true)
      expect(Tracing.enabled(on, { OTEL_SDK_DISABLED: "true" })).toBe(false)
      expect(Tracing.enabled(on, { OTEL_TRACES_EXPORTER: "none" })).toBe(false)
      // The standard variable turns it on when the config does not say.
      expect(Tracing.enabled(plain, { OTEL_TRACES_EXPORTER: "otlp" })).toBe(true)
      expect(Tracing.enabled(yield* ConfigLoader.fromObject({ ...base, telemetry: { enabled: false } }, {}), { OTEL_TRACES_EXPORTER: "otlp" })).toBe(false)

      const bad = yield* Effect.flip(ConfigLoader.fromObject({ ...base, telemetry: { enabled: "yes", samplingRatio: 2 } }, {}))
      expect(bad.issues.map((i) => i.path)).toEqual(expect.arrayContaining(["telemetry.enabled", "telemetry.samplingRatio"]))
    }))
})

describe("Tracing in the builder", () => {
  it.scoped("off: the telemetry package is never loaded, and the pipeline observes nothing", () =>
    Effect.gen(function*() {
      let loads = 0
      const config = yield* ConfigLoader.fromObject(base, {})
      const gateway = yield* GatewayBuilder.make(config, { telemetry: Tracing.telemetry(() => (loads++, Promise.reject(new Error("not installed")))) })
      expect(loads).toBe(0)
      expect(gateway.telemetry).toBeUndefined()
      const pipeline = RequestPipeline.make(gateway, { log: () => {} })
      expect(pipeline.observe("r-1", {}, { model: "chat", messages: [{ role: "user", content: "hi" }] })).toBeUndefined()
    }))

  it.effect("on: the package is loaded and made with the section and the upstreams' providers, shut down with the gateway's scope", () =>
    Effect.gen(function*() {
      const stand = standIn()
      const config = yield* ConfigLoader.fromObject({ ...base, telemetry: { enabled: true, captureContent: true } }, {})
      yield* Effect.scoped(Effect.gen(function*() {
        const gateway = yield* GatewayBuilder.make(config, { telemetry: Tracing.telemetry(() => Promise.resolve(stand.module)) })
        expect(stand.made).toEqual([{ options: { enabled: true, captureContent: true }, providers: { primary: "openai" } }])
        const pipeline = RequestPipeline.make(gateway, { log: () => {} })
        expect(pipeline.observe("r-2", { traceparent: "x" }, { model: "chat", messages: [{ role: "user", content: "hi" }] })).toMatchObject({ id: "r-2" })
        expect(stand.shutdowns()).toBe(0)
      }))
      expect(stand.shutdowns()).toBe(1)
    }))

  it.scoped("on, without the package: a config error at build time that says how to install it", () =>
    Effect.gen(function*() {
      const config = yield* ConfigLoader.fromObject({ ...base, telemetry: { enabled: true } }, {})
      const exit = yield* Effect.exit(GatewayBuilder.make(config, { telemetry: Tracing.telemetry(() => Promise.reject(new Error("Cannot find package"))) }))
      expect(Exit.isFailure(exit)).toBe(true)
      const error = yield* Effect.flip(GatewayBuilder.make(config, { telemetry: Tracing.telemetry(() => Promise.reject(new Error("Cannot find package"))) }))
      expect(error.issues[0]!.path).toBe("telemetry")
      expect(error.issues[0]!.message).toMatch(/npm install @breakwater\/telemetry/)
    }))
})
