/**
 * Loads a gateway config from a JSON or YAML file (read through `@effect/platform`'s
 * `FileSystem`: `NodeFileSystem.layer` on Node, a stub in tests), or an object: environment references
 * (`"${OPENAI_API_KEY}"`) resolved, then validated by `GatewayConfig`. Every problem is reported
 * at once, by path — with every substituted value, and every inline `apiKey`, `key`, `url`,
 * `password`, `token` or `secret`, redacted from the messages (they quote the values they reject).
 *
 * @since 0.1.0
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { parse as parseYaml } from "yaml"
import { GatewayConfig } from "./GatewayConfig.js"
import * as Aliases from "./internal/aliases.js"

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
 * The config is invalid; `issues` lists every problem by path. `file` names the config file when
 * one was read (`fromFile`): it could not be read (`issues[0]` says why, e.g. it does not exist),
 * was not valid JSON or YAML, or held an invalid config.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConfigError extends Data.TaggedError("ConfigError")<{
  readonly issues: ReadonlyArray<ConfigIssue>
  readonly file?: string | undefined
}> {
  override get message(): string {
    return `invalid gateway config:\n${this.issues.map((i) => `  - ${i.path === "" ? "(root)" : i.path}: ${i.message}`).join("\n")}`
  }
}

const reference = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g

/**
 * Replaces `${NAME}` in every string of a JSON value with the environment's value; a missing
 * variable is an issue at that path. Every value substituted is added to `substituted` (so that
 * messages about the result can be redacted).
 *
 * @since 0.1.0
 * @category loading
 */
export const resolveEnv = (
  value: unknown,
  env: Readonly<Record<string, string | undefined>>,
  issues: Array<ConfigIssue> = [],
  path = "",
  substituted: Set<string> = new Set()
): unknown => {
  if (typeof value === "string") {
    return value.replace(reference, (_, name: string) => {
      const v = env[name]
      if (v === undefined || v === "") {
        issues.push({ path, message: `environment variable ${name} is not set` })
        return ""
      }
      substituted.add(v)
      return v
    })
  }
  const at = (k: string | number) => (path === "" ? String(k) : `${path}.${k}`)
  if (Array.isArray(value)) return value.map((v, i) => resolveEnv(v, env, issues, at(i), substituted))
  if (typeof value === "object" && value !== null) {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[k] = resolveEnv(v, env, issues, at(k), substituted)
    return out
  }
  return value
}

// Fields that hold a secret even when written inline rather than as a `${VAR}` reference.
const secretField = /^(apiKey|key|url|password|token|secret)$/i

const inlineSecrets = (value: unknown, into: Set<string>, field = ""): void => {
  if (typeof value === "string") {
    if (secretField.test(field)) into.add(value)
  } else if (Array.isArray(value)) for (const v of value) inlineSecrets(v, into, field)
  else if (typeof value === "object" && value !== null) {
    for (const [k, v] of Object.entries(value)) inlineSecrets(v, into, k)
  }
}

/**
 * Redacts every secret from a validation message, in each form a formatter may quote it:
 * as is, JSON-escaped, URL-encoded. Messages quote the offending value, and after substitution
 * that value may be (or contain, or sit beside) a key, a password in a URL, a token.
 */
const redact = (message: string, secrets: ReadonlyArray<string>): string => {
  let out = message
  for (const secret of secrets) {
    for (const form of [secret, JSON.stringify(secret).slice(1, -1), encodeURIComponent(secret)]) {
      if (form.length > 0 && out.includes(form)) out = out.split(form).join("<redacted>")
    }
  }
  return out
}

const decode = Schema.decodeUnknownEither(GatewayConfig, { errors: "all", onExcessProperty: "error" })

/**
 * Validates a config object (already parsed from JSON). The old names of settings that now
 * carry their policy's name (`breaker.window.type`, `breaker.openBackoffFactor`,
 * `retry.budgetRatio`, `retry.budgetMinPerSecond`, `resume.toolCalls`, `hedging.budgetRatio`)
 * are still read, with a warning logged per use; writing both names is an issue.
 *
 * @since 0.1.0
 * @category loading
 */
export const fromObject = (
  input: unknown,
  env: Readonly<Record<string, string | undefined>> = process.env
): Effect.Effect<GatewayConfig, ConfigError> => {
  const issues: Array<ConfigIssue> = []
  const secrets = new Set<string>()
  const resolved = resolveEnv(input, env, issues, "", secrets)
  const renames = Aliases.apply(resolved)
  for (const r of renames) {
    if (r.conflict) issues.push({ path: r.path, message: `the old name of ${r.now}: write only ${r.now}` })
  }
  const decoded = decode(resolved)
  if (Either.isLeft(decoded)) {
    inlineSecrets(input, secrets)
    // Longest first, so that a secret containing another is redacted whole.
    const list = [...secrets].sort((a, b) => b.length - a.length)
    for (const issue of ParseResult.ArrayFormatter.formatErrorSync(decoded.left)) {
      issues.push({ path: redact(issue.path.join("."), list), message: redact(issue.message, list) })
    }
  }
  if (issues.length > 0 || Either.isLeft(decoded)) return Effect.fail(new ConfigError({ issues }))
  const deprecated = renames.map((r) => Effect.logWarning(`config: ${r.path} is deprecated; write ${r.now}`))
  return Effect.as(Effect.all(deprecated, { discard: true }), decoded.right)
}

/**
 * Reads and validates a config file: JSON, or YAML when the name ends in `.yaml` / `.yml`. The
 * file is read through `FileSystem` (provide `NodeFileSystem.layer` from `@effect/platform-node`,
 * or your platform's); every failure is a `ConfigError` whose `file` is `path`.
 *
 * @since 0.1.0
 * @category loading
 */
export const fromFile = (
  path: string,
  env: Readonly<Record<string, string | undefined>> = process.env
): Effect.Effect<GatewayConfig, ConfigError, FileSystem.FileSystem> => {
  const fail = (message: string) => new ConfigError({ issues: [{ path: "", message }], file: path })
  return FileSystem.FileSystem.pipe(
    Effect.flatMap((fs) => fs.readFileString(path)),
    Effect.mapError((error) =>
      fail(error._tag === "SystemError" && error.reason === "NotFound" ? `cannot read ${path}: no such file` : `cannot read ${path}: ${error.message}`)
    ),
    Effect.flatMap((text) => {
      const yaml = /\.ya?ml$/i.test(path)
      return Effect.try({
        // YAML 1.2 core schema: plain data only (no custom tags), so a config cannot run code.
        try: () => (yaml ? parseYaml(text, { schema: "core", prettyErrors: true }) : JSON.parse(text)) as unknown,
        catch: (error) => fail(`${path} is not valid ${yaml ? "YAML" : "JSON"}: ${(error as Error).message}`)
      })
    }),
    Effect.flatMap((json) => Effect.mapError(fromObject(json, env), (error) => new ConfigError({ issues: error.issues, file: path })))
  )
}
