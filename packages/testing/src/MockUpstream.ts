/**
 * A fault-injecting mock upstream: a real HTTP server on loopback speaking the OpenAI Chat
 * Completions (`POST /v1/chat/completions`, `GET /v1/models`) and Anthropic Messages
 * (`POST /v1/messages`) wire formats, streaming and not, with deterministic answers and scripted
 * faults. Wire-level tests, the reference server's keyless mode and the benchmark all use it.
 *
 * Answers are a pure function of the last user message and the word count (`textFor`), and a
 * request that continues a partial answer of the mock (an assistant prefill, or a user message
 * asking to continue after an assistant message holding the partial, or quoting its tail) gets
 * the rest of that same text — so a stream that a gateway resumed can be compared with the
 * uninterrupted text exactly.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as internal from "./internal/behavior.js"
import type { ChaosOptions } from "./internal/chaos.js"
import { MockServer } from "./internal/mockServer.js"
import type { RecordedRequest } from "./internal/requestLog.js"
import * as Text from "./internal/mockText.js"

/**
 * How the upstream fails: at most one fault per request, built with the `Fault` constructors
 * (`Fault.Status({ status: 429 })`, `Fault.Cut({ afterChunks: 3 })`). The `afterChunks` faults
 * count content chunks and strike streams only.
 *
 * | fault | effect |
 * |---|---|
 * | `Status({ status, message? })` | an error response with the provider's error body |
 * | `ResetBeforeHeaders()` | the connection is destroyed once the request is read, no response |
 * | `StallBeforeHeaders()` | no response at all, until the client gives up or the mock stops |
 * | `Cut({ afterChunks })` | the socket is destroyed after that many content chunks |
 * | `Stall({ afterChunks })` | the stream goes silent after that many chunks, connection open |
 * | `Malformed({ afterChunks })` | a truncated JSON frame after that many chunks, then the end |
 * | `ErrorEvent({ afterChunks })` | an in-band error event (Anthropic: `overloaded_error`), then the end |
 * | `NoTerminator()` | a clean end without `[DONE]` / `message_stop` |
 *
 * @since 0.3.0
 * @category models
 */
export type Fault = internal.Fault

/**
 * The constructors of `Fault` (and `$is`, `$match`): `Fault.Cut({ afterChunks: 3 })`.
 *
 * @since 0.3.0
 * @category constructors
 */
export const Fault = internal.Fault

/**
 * How a request that continues a partial answer of the mock is mishandled, as real upstreams
 * do: `Overlap({ chars })` repeats the last `chars` delivered characters first, `Restart()`
 * answers from the start, `RejectPrefill()` is a 400 for a request ending with an assistant
 * message.
 *
 * @since 0.3.0
 * @category models
 */
export type ContinuationFault = internal.ContinuationFault

/**
 * The constructors of `ContinuationFault`: `ContinuationFault.Overlap({ chars: 5 })`.
 *
 * @since 0.3.0
 * @category constructors
 */
export const ContinuationFault = internal.ContinuationFault

/**
 * What the mock does with one request. `{}` answers normally; `fault` and `continuation` say
 * what goes wrong (one of each at most); the other fields shape and pace the answer and combine
 * freely with them and with each other.
 *
 * | field | effect |
 * |---|---|
 * | `fault` | a `Fault` |
 * | `continuation` | a `ContinuationFault` |
 * | `headers` | added to the response, an error or not (`retry-after`, …) |
 * | `words`, `text`, `model` | answer length, or the exact answer text; the model name echoed |
 * | `toolCall` | answer with one tool call whose JSON arguments stream in pieces |
 * | `headersDelayMs`, `firstChunkDelayMs`, `chunkDelayMs` | delays before headers, the first content chunk, between chunks |
 * | `pingEveryMs` | keep-alive comments (OpenAI) or `ping` events (Anthropic) while the stream is open |
 * | `splitUtf8` | write every frame in two writes split inside a multi-byte character |
 *
 * @since 0.1.0
 * @category models
 */
export type Behavior = internal.Behavior

/**
 * One request the mock received.
 *
 * @since 0.1.0
 * @category models
 */
export type { RecordedRequest }

/**
 * `chaos` settings: one of `behaviors` for a `rate` share (0 to 1) of unscripted requests,
 * reproducibly from `seed` (default: the start option's `seed`, else 1).
 *
 * @since 0.3.0
 * @category models
 */
export type { ChaosOptions }

/**
 * Start options: `port` (0: any free port), `host` (`127.0.0.1`), `words` (24: answer length),
 * `chunkDelayMs` (0: chunks back to back), `seed` (the chaos generator's default seed), `fast`
 * (false; benchmark mode: answers are rendered once per behavior and request body and reused,
 * response ids repeat, and requests are counted in `received` but not logged in `requests`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly port?: number | undefined
  readonly host?: string | undefined
  readonly words?: number | undefined
  readonly chunkDelayMs?: number | undefined
  readonly seed?: number | undefined
  readonly fast?: boolean | undefined
  /** Requests kept in `requests` (oldest dropped first); unbounded by default. */
  readonly maxRequests?: number | undefined
}

/**
 * A running mock upstream.
 *
 * @since 0.1.0
 * @category models
 */
export interface MockUpstream {
  /** Base URL with `/v1`: what an OpenAI client or adapter takes as `baseURL`. */
  readonly url: string
  /** `http://host:port`: what an Anthropic client or adapter takes as its base URL. */
  readonly origin: string
  readonly port: number
  /** Every request received, in order (cleared by `reset`; empty in `fast` mode). */
  readonly requests: ReadonlyArray<RecordedRequest>
  /** How many requests arrived since the start or the last `reset` (counted in `fast` mode too). */
  readonly received: number
  /** Queues behaviors, one per incoming POST, before the default applies again. */
  readonly script: (...behaviors: ReadonlyArray<Behavior>) => void
  /** The behavior when nothing is scripted (initially `{}`: answer normally). */
  readonly setDefault: (behavior: Behavior) => void
  /** Picks one of `behaviors` for a seeded random `rate` of unscripted requests; `undefined` turns it off. */
  readonly chaos: (options: ChaosOptions | undefined) => void
  /** Clears the request log, the script, the default and chaos. */
  readonly reset: () => void
  /** Resolves once `n` requests have arrived in all (rejects after `timeoutMs`, default 5 s). */
  readonly waitFor: (n: number, timeoutMs?: number) => Promise<void>
  /**
   * The full answer to a request with the mock's default length (or `words`): for a
   * continuation request, the whole text it continues.
   */
  readonly textFor: (request: { readonly messages?: ReadonlyArray<unknown> | undefined }, words?: number) => string
  /** Open TCP connections from clients. */
  readonly openConnections: number
  /** Responses still open (streams in flight, stalled, or waiting for their headers delay). */
  readonly openResponses: number
  /** Stops listening and destroys every connection: new connections are refused. */
  readonly stop: () => Promise<void>
  /** Same as `stop`. */
  readonly close: () => Promise<void>
  /** Listens again on the same port ("down for a while, then back"). */
  readonly restart: () => Promise<void>
}

/**
 * Starts a mock upstream.
 *
 * @since 0.1.0
 * @category constructors
 */
export const start = async (options: Options = {}): Promise<MockUpstream> => {
  const server = new MockServer(options)
  await server.listen(options.port ?? 0)
  const origin = `http://${server.host}:${server.port}`
  const stop = () => server.close()
  return {
    url: `${origin}/v1`,
    origin,
    port: server.port,
    requests: server.log.requests,
    get received() {
      return server.log.received
    },
    script: (...behaviors) => server.script(behaviors),
    setDefault: (behavior) => server.setDefault(behavior),
    chaos: (chaos) => server.chaos(chaos),
    reset: () => server.reset(),
    waitFor: (n, timeoutMs = 5_000) => server.log.waitFor(n, timeoutMs),
    textFor: (request, words) => Text.plan(request.messages as never, words ?? server.words).full,
    get openConnections() {
      return server.openConnections
    },
    get openResponses() {
      return server.openResponses
    },
    stop,
    close: stop,
    restart: () => server.listen(server.port)
  }
}

/**
 * Starts a mock upstream that stops when the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const scoped = (options: Options = {}): Effect.Effect<MockUpstream, never, Scope.Scope> =>
  Effect.acquireRelease(Effect.promise(() => start(options)), (mock) => Effect.promise(() => mock.stop()))
