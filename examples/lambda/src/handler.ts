/**
 * The Breakwater gateway as an AWS Lambda handler (see README.md for a SAM template).
 *
 * The config comes from `BREAKWATER_CONFIG_JSON` (the JSON itself, handy for small configs set
 * as an environment variable) or `BREAKWATER_CONFIG` (a path, default `./breakwater.json`
 * bundled with the function). Provider keys stay `${ENV}` references resolved at cold start.
 */
import { ConfigLoader, GatewayBuilder } from "@breakwater/gateway"
import { LambdaHandler } from "@breakwater/host-lambda"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as Effect from "effect/Effect"

const loadConfig = (env: Readonly<Record<string, string | undefined>>) => {
  const inline = env["BREAKWATER_CONFIG_JSON"]
  if (inline !== undefined && inline !== "") {
    return Effect.flatMap(
      Effect.try({
        try: () => JSON.parse(inline) as unknown,
        catch: (error) =>
          new ConfigLoader.ConfigError({ issues: [{ path: "", message: `BREAKWATER_CONFIG_JSON is not valid JSON: ${(error as Error).message}` }] })
      }),
      (json) => ConfigLoader.fromObject(json, env)
    )
  }
  return Effect.provide(ConfigLoader.fromFile(env["BREAKWATER_CONFIG"] ?? "./breakwater.json", env), NodeFileSystem.layer)
}

/** The handlers, built from the environment; the gateway itself is built on the first invocation. */
export const makeHandlers = (env: Readonly<Record<string, string | undefined>> = process.env): LambdaHandler.Handlers =>
  LambdaHandler.make({
    gateway: Effect.flatMap(loadConfig(env), (config) => GatewayBuilder.make(config)),
    logLevel: (env["BREAKWATER_LOG_LEVEL"] ?? "info") as LambdaHandler.Options<unknown>["logLevel"]
  })

/** What the Lambda runtime calls: response streaming where the runtime offers it, else buffered. */
export const handler = makeHandlers().handler
