import { ConfigLoader } from "@breakwater/gateway"
import { SystemError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Either, Redacted } from "effect"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const valid = {
  upstreams: {
    openai: { provider: "openai", apiKey: "${OPENAI_API_KEY}", models: ["gpt-4o-mini"] },
    claude: { provider: "anthropic", apiKey: "${ANTHROPIC_API_KEY}", models: { "gpt-4o-mini": "claude-3-5-haiku-latest" } }
  },
  routes: {
    "gpt-4o-mini": { upstreams: ["openai", { upstream: "claude", weight: 2 }], deadline: "45 seconds" }
  },
  defaults: { timeouts: { idle: 15000 } }
}
const env = { OPENAI_API_KEY: "sk-test-openai-0000", ANTHROPIC_API_KEY: "sk-ant-test-0000" }

describe("ConfigLoader", () => {
  it.effect("resolves environment references into redacted secrets and parses durations", () =>
    Effect.gen(function*() {
      const config = yield* ConfigLoader.fromObject(valid, env)
      const key = config.upstreams["openai"]!.apiKey!
      expect(Redacted.value(key)).toBe("sk-test-openai-0000")
      expect(String(key)).not.toContain("sk-test")
      expect(JSON.stringify(config)).not.toContain("sk-test")
      expect(Duration.toMillis(config.routes["gpt-4o-mini"]!.deadline!)).toBe(45_000)
      expect(Duration.toMillis(config.defaults!.timeouts!.idle!)).toBe(15_000)
    }))

  it.effect("lists every problem by path at once", () =>
    Effect.gen(function*() {
      const broken = {
        upstreams: {
          openai: { provider: "openia", apiKey: "${MISSING_KEY}" },
          other: { provider: "anthropic", baseUrl: "ftp://nope", azureApiVersion: "2024-10-21" }
        },
        routes: { m: { upstreams: ["ghost"], deadline: "soon" } },
        surprise: true
      }
      const result = yield* Effect.either(ConfigLoader.fromObject(broken, {}))
      expect(Either.isLeft(result)).toBe(true)
      if (Either.isRight(result)) return
      const paths = result.left.issues.map((i) => i.path)
      expect(paths).toContain("upstreams.openai.apiKey")
      expect(paths).toContain("upstreams.other.baseUrl")
      expect(paths).toContain("routes.m.deadline")
      expect(paths).toContain("surprise")
      expect(result.left.message).toMatch(/MISSING_KEY is not set/)
      expect(result.left.message).toMatch(/expected a duration like "/)
    }))

  it.effect("rejects routes that name unknown upstreams, and options for the wrong provider", () =>
    Effect.gen(function*() {
      const result = yield* Effect.either(ConfigLoader.fromObject({
        upstreams: { a: { provider: "anthropic", azureApiVersion: "x" } },
        routes: { m: { upstreams: ["a", "ghost"] } }
      }, {}))
      expect(Either.isLeft(result) && result.left.issues).toEqual([
        { path: "routes.m.upstreams.1", message: expect.stringMatching(/unknown upstream "ghost"/) },
        { path: "upstreams.a.azureApiVersion", message: expect.stringMatching(/openai provider only/) }
      ])
    }))

  it.effect("reports an unreadable or non-JSON file clearly", () =>
    Effect.gen(function*() {
      const missing = yield* Effect.either(ConfigLoader.fromFile("/nonexistent/breakwater.json"))
      expect(Either.isLeft(missing) && missing.left.message).toMatch(/cannot read \/nonexistent\/breakwater.json/)
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("reads the file through the FileSystem it is given: a missing file, bad JSON and bad YAML are ConfigErrors naming it", () =>
    Effect.gen(function*() {
      const missing = yield* Effect.flip(ConfigLoader.fromFile("/etc/bw/missing.json", env))
      expect(missing).toBeInstanceOf(ConfigLoader.ConfigError)
      expect(missing.file).toBe("/etc/bw/missing.json")
      expect(missing.issues).toEqual([{ path: "", message: "cannot read /etc/bw/missing.json: no such file" }])
      const json = yield* Effect.flip(ConfigLoader.fromFile("/etc/bw/broken.json", env))
      expect(json.file).toBe("/etc/bw/broken.json")
      expect(json.issues[0]?.message).toMatch(/^\/etc\/bw\/broken.json is not valid JSON: /)
      const yaml = yield* Effect.flip(ConfigLoader.fromFile("/etc/bw/broken.yaml", env))
      expect(yaml.file).toBe("/etc/bw/broken.yaml")
      expect(yaml.issues[0]?.message).toMatch(/^\/etc\/bw\/broken.yaml is not valid YAML: /)
      const invalid = yield* Effect.flip(ConfigLoader.fromFile("/etc/bw/invalid.json", env))
      expect(invalid.file).toBe("/etc/bw/invalid.json")
      expect(invalid.issues.map((i) => i.path)).toEqual(["upstreams", "routes"])
      const config = yield* ConfigLoader.fromFile("/etc/bw/good.json", env)
      expect(Redacted.value(config.upstreams["openai"]!.apiKey!)).toBe("sk-test-openai-0000")
    }).pipe(Effect.provide(FileSystem.layerNoop({
      // A file system holding four files: any other path is NotFound.
      readFileString: (path) => {
        const text = ({
          "/etc/bw/broken.json": "{ \"upstreams\": ",
          "/etc/bw/broken.yaml": "upstreams: [unclosed",
          "/etc/bw/invalid.json": "{ \"upstreams\": {}, \"routes\": {} }",
          "/etc/bw/good.json": JSON.stringify(valid)
        } as Record<string, string>)[path]
        return text === undefined
          ? Effect.fail(new SystemError({ reason: "NotFound", module: "FileSystem", method: "readFileString", pathOrDescriptor: path }))
          : Effect.succeed(text)
      }
    }))))

  it.effect("reads YAML files, with the same validation and environment references", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "bw-config-"))
      const good = join(dir, "breakwater.yaml")
      writeFileSync(good, [
        "upstreams:",
        "  openai:",
        "    provider: openai",
        "    apiKey: ${OPENAI_API_KEY}",
        "    models: [gpt-4o-mini]",
        "routes:",
        "  gpt-4o-mini:",
        "    upstreams: [openai]",
        "    deadline: 45 seconds"
      ].join("\n"))
      const config = yield* ConfigLoader.fromFile(good, env)
      expect(Redacted.value(config.upstreams["openai"]!.apiKey!)).toBe("sk-test-openai-0000")
      expect(Duration.toMillis(config.routes["gpt-4o-mini"]!.deadline!)).toBe(45_000)
      const bad = join(dir, "bad.yml")
      writeFileSync(bad, "upstreams: [unclosed")
      const error = yield* Effect.flip(ConfigLoader.fromFile(bad, env))
      expect(error.issues[0]?.message).toMatch(/bad.yml is not valid YAML/)
      const invalid = join(dir, "invalid.yml")
      writeFileSync(invalid, "upstreams: {}\nroutes: {}\n")
      const issues = yield* Effect.flip(ConfigLoader.fromFile(invalid, env))
      expect(issues.issues.map((i) => i.path)).toEqual(["upstreams", "routes"])
    }).pipe(Effect.provide(NodeFileSystem.layer)))
})
