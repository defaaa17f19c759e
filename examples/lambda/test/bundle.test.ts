/**
 * The Lambda example bundled the way its README deploys it (esbuild, one ESM file for Node):
 * a gateway without Redis carries no Redis code. The gateway loads `@breakwater/store-redis` only
 * for a config with a `redis` section, through an import no bundler follows; an app that wants
 * Redis in its bundle names the import itself (the control case below), and then gets ioredis.
 *
 * Tracing likewise: the OpenTelemetry SDK (`@breakwater/telemetry`) is loaded only when the config
 * traces, through an import no bundler follows, so the default bundle holds none of it.
 *
 * Bundled from the packages' sources (`tsconfig.test.json` maps `@breakwater/*` to them), so the
 * test reads the code as it is, not a stale `dist/`.
 */
import { build, type Metafile } from "esbuild"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"

const root = fileURLToPath(new URL("../../..", import.meta.url))
const src = fileURLToPath(new URL("../src", import.meta.url))

const bundle = async (entry: { readonly file: string } | { readonly contents: string }) => {
  const result = await build({
    ...("file" in entry
      ? { entryPoints: [entry.file] }
      : { stdin: { contents: entry.contents, resolveDir: src, sourcefile: "app.ts", loader: "ts" as const } }),
    absWorkingDir: root,
    tsconfig: `${root}tsconfig.test.json`,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outfile: "build/index.mjs",
    write: false,
    metafile: true,
    logLevel: "silent"
  })
  return { inputs: Object.keys((result.metafile as Metafile).inputs), text: result.outputFiles[0]!.text }
}

const redisModules = (inputs: ReadonlyArray<string>) =>
  inputs.filter((path) => /(^|\/)node_modules\/ioredis\/|(^|\/)packages\/store-redis\/|@breakwater\/store-redis\//.test(path))

const telemetryModules = (inputs: ReadonlyArray<string>) =>
  inputs.filter((path) => /@opentelemetry\/|(^|\/)packages\/telemetry\/|@breakwater\/telemetry\//.test(path))

describe("examples/lambda bundle", () => {
  it("holds the gateway, its policies and adapters, and no Redis code (no ioredis, no store-redis)", async () => {
    const { inputs, text } = await bundle({ file: `${src}/main.ts` })
    // What the handler needs is there: the builder, the adapters, the Lambda host.
    expect(inputs).toEqual(expect.arrayContaining([
      "packages/gateway/src/internal/builder.ts",
      "packages/provider-openai/src/OpenAiProvider.ts",
      "packages/provider-anthropic/src/AnthropicProvider.ts",
      "packages/host-lambda/src/LambdaHandler.ts"
    ]))
    expect(redisModules(inputs)).toEqual([])
    expect(text).not.toMatch(/ioredis/)
    // No tracing code either: the Tracing module is there, the OpenTelemetry SDK is not.
    expect(inputs).toContain("packages/gateway/src/Tracing.ts")
    expect(telemetryModules(inputs)).toEqual([])
    expect(text).not.toMatch(/@opentelemetry|OTLPTraceExporter/)
  })

  // The control cases: an app that names the import itself gets the package in its bundle, so
  // the checks above can see it when it is there.
  const namedImports = [
    {
      what: "the Redis stores (ioredis with them)",
      app: `import { SharedState } from "@breakwater/gateway"\nexport const s = SharedState.redis(() => import("@breakwater/store-redis"))`,
      modules: redisModules,
      expected: ["packages/store-redis/src/RedisStores.ts", /node_modules\/ioredis\//],
      text: /ioredis/
    },
    {
      what: "the telemetry package (the OpenTelemetry SDK with it)",
      app: `import { Tracing } from "@breakwater/gateway"\nexport const t = Tracing.telemetry(() => import("@breakwater/telemetry"))`,
      modules: telemetryModules,
      expected: ["packages/telemetry/src/Telemetry.ts", /node_modules\/@opentelemetry\/sdk-trace-base\//],
      text: /OTLPTraceExporter/
    }
  ]
  for (const c of namedImports) {
    it(`an app that imports ${c.what} itself bundles it, and the check sees it`, async () => {
      const { inputs, text } = await bundle({ contents: c.app })
      expect(c.modules(inputs)).toEqual(expect.arrayContaining(c.expected.map((e) => (typeof e === "string" ? e : expect.stringMatching(e)))))
      expect(text).toMatch(c.text)
    })
  }
})
