/**
 * Loads a gateway config from a JSON file, a JSON string or an object: environment references
 * (`"${OPENAI_API_KEY}"`) resolved, then validated by `GatewayConfig`. Every problem is reported
 * at once, by path.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { readFile } from "node:fs/promises"
import { parse as parseYaml } from "yaml"
import { GatewayConfig } from "./GatewayConfig.js"

/**
 * One problem in a config.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConfigIssue {
  readonly path: string
  readonly message: string
}

/**
 * The config is invalid; `issues` lists every problem by path.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConfigError extends Data.TaggedError("ConfigError")<{ readonly issues: ReadonlyArray<ConfigIssue> }> {
  override get message(): string {
    return `invalid gateway config:\n${this.issues.map((i) => `  - ${i.path === "" ? "(root)" : i.path}: ${i.message}`).join("\n")}`
  }
}

const reference = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g

/**
 * Replaces `${NAME}` in every string of a JSON value with the environment's value; a missing
 * variable is an issue at that path.
 *
 * @since 0.1.0
 * @category loading
 */
export const resolveEnv = (
  value: unknown,
  env: Readonly<Record<string, string | undefined>>,
  issues: Array<ConfigIssue> = [],
  path = ""
): unknown => {
  if (typeof value === "string") {
    return value.replace(reference, (_, name: string) => {
      const v = env[name]
      if (v === undefined || v === "") {
        issues.push({ path, message: `environment variable ${name} is not set` })
        return ""
      }
      return v
    })
  }
  if (Array.isArray(value)) return value.map((v, i) => resolveEnv(v, env, issues, path === "" ? String(i) : `${path}.${i}`))
  if (typeof value === "object" && value !== null) {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[k] = resolveEnv(v, env, issues, path === "" ? k : `${path}.${k}`)
    return out
  }
  return value
}

const decode = Schema.decodeUnknownEither(GatewayConfig, { errors: "all", onExcessProperty: "error" })

/**
 * Validates a config object (already parsed from JSON).
 *
 * @since 0.1.0
 * @category loading
 */
export const fromObject = (
  input: unknown,
  env: Readonly<Record<string, string | undefined>> = process.env
): Effect.Effect<GatewayConfig, ConfigError> => {
  const issues: Array<ConfigIssue> = []
  const resolved = resolveEnv(input, env, issues)
  const decoded = decode(resolved)
  if (Either.isLeft(decoded)) {
    for (const issue of ParseResult.ArrayFormatter.formatErrorSync(decoded.left)) {
      issues.push({ path: issue.path.join("."), message: issue.message })
    }
  }
  if (issues.length > 0 || Either.isLeft(decoded)) return Effect.fail(new ConfigError({ issues }))
  return Effect.succeed(decoded.right)
}

/**
 * Reads and validates a config file: JSON, or YAML when the name ends in `.yaml` / `.yml`.
 *
 * @since 0.1.0
 * @category loading
 */
export const fromFile = (
  path: string,
  env: Readonly<Record<string, string | undefined>> = process.env
): Effect.Effect<GatewayConfig, ConfigError> =>
  Effect.tryPromise({
    try: () => readFile(path, "utf8"),
    catch: (error) => new ConfigError({ issues: [{ path: "", message: `cannot read ${path}: ${(error as Error).message}` }] })
  }).pipe(
    Effect.flatMap((text) => {
      const yaml = /\.ya?ml$/i.test(path)
      return Effect.try({
        // YAML 1.2 core schema: plain data only (no custom tags), so a config cannot run code.
        try: () => (yaml ? parseYaml(text, { schema: "core", prettyErrors: true }) : JSON.parse(text)) as unknown,
        catch: (error) =>
          new ConfigError({ issues: [{ path: "", message: `${path} is not valid ${yaml ? "YAML" : "JSON"}: ${(error as Error).message}` }] })
      })
    }),
    Effect.flatMap((json) => fromObject(json, env))
  )
