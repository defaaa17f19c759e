/**
 * The Node HTTP host: serves a built gateway as an OpenAI-compatible API.
 *
 * `POST /v1/chat/completions` (streaming and not), `GET /v1/models`, `GET /healthz`,
 * `GET /readyz`, `GET /metrics`. Client keys, body/header/concurrency limits, request ids,
 * headers naming the upstream and the attempts, JSON logs, and a graceful shutdown that lets
 * streams finish. It runs on `node:http` directly: the gateway's own cost is a product feature,
 * and the benchmark showed the per-request machinery of a general HTTP framework dominates it.
 *
 * @since 0.1.0
 */

import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type * as http from "node:http"
import { Gateway, HostRuntime, type StatusBoard } from "@breakwater/gateway"
import type { StreamJournal } from "@breakwater/stream-resume"
import * as internal from "./internal/server.js"

/**
 * A log line sink (one JSON-ready record per call).
 *
 * @since 0.1.0
 * @category models
 */
export type LogSink = HostRuntime.LogSink

/**
 * Host options; anything not given comes from the gateway's `server` settings.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly host?: string | undefined
  readonly port?: number | undefined
  /** Where log lines go (default: one JSON object per line on stdout). */
  readonly log?: LogSink | undefined
  /** Lowest level logged (default `info`). */
  readonly logLevel?: HostRuntime.Level | undefined
  /**
   * Where streamed responses are journaled for client reconnects (`Last-Event-ID`); default: an
   * in-memory `StreamJournal` with its default bounds. `false` turns journaling off: streams then
   * carry no event ids and stop as soon as their client leaves.
   */
  readonly journal?: StreamJournal.StreamJournal | false | undefined
  /** The `retry:` hint (ms) that starts each journaled stream (default 1000). */
  readonly reconnectRetryMs?: number | undefined
  /**
   * The live status page (`GET /status`, behind the admin key when client keys are configured):
   * on by default, or the bounds of its board; `false` turns it off (the page then answers 404
   * and requests are not recorded).
   */
  readonly statusPage?: boolean | StatusBoard.Options | undefined
}

/**
 * A running server.
 *
 * @since 0.1.0
 * @category models
 */
export interface RunningServer {
  /** e.g. `http://127.0.0.1:8787` */
  readonly url: string
  readonly host: string
  readonly port: number
  readonly server: http.Server
  /** Stops accepting, lets running requests finish for up to `graceMs`, then cuts the rest. */
  readonly close: (graceMs?: number) => Promise<void>
}

/**
 * Starts serving a gateway; resolves once listening.
 *
 * @since 0.1.0
 * @category constructors
 */
export const start: (gateway: Gateway.Gateway, options?: Options) => Promise<RunningServer> = internal.start

/**
 * Serves a gateway for the lifetime of the scope (closing gracefully when it closes).
 *
 * @since 0.1.0
 * @category constructors
 */
export const serve = (gateway: Gateway.Gateway, options?: Options): Effect.Effect<RunningServer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => internal.start(gateway, options)),
    (running) => Effect.promise(() => running.close())
  )

/**
 * Serves the gateway in the context for as long as the layer lives.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: Options): Layer.Layer<never, never, Gateway.Gateway> =>
  Layer.scopedDiscard(Effect.flatMap(Gateway.Gateway, (gateway) => serve(gateway, options)))

/**
 * Closes the server gracefully on SIGTERM / SIGINT, then exits the process.
 *
 * @since 0.1.0
 * @category utils
 */
export const closeOnSignals = (running: RunningServer, log: LogSink = HostRuntime.stdoutSink): void => {
  let closing = false
  const onSignal = (signal: string) => {
    if (closing) return
    closing = true
    log({ level: "info", time: new Date().toISOString(), msg: `received ${signal}: draining` })
    void running.close().then(() => process.exit(0))
  }
  process.once("SIGTERM", () => onSignal("SIGTERM"))
  process.once("SIGINT", () => onSignal("SIGINT"))
}
