import * as ChatCompletion from "../ChatCompletion.js"
import type * as LanguageModel from "../LanguageModel.js"
import * as Durations from "../Durations.js"
import * as ModelError from "../ModelError.js"
import * as RequestContext from "../RequestContext.js"
import * as SseCodec from "../SseCodec.js"
import * as UpstreamHttp from "../UpstreamHttp.js"
import * as observe from "./observer.js"
import * as push from "./push.js"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"

/** @internal */
export type Scrub = (text: string) => string

const forms = new Map<string, ReadonlyArray<string>>()

/**
 * The forms a secret can take in text an upstream echoes: as is, URL-encoded, and base64
 * (standard and URL-safe) at each of the three alignments it can have inside a longer encoded
 * value (`Basic …`, `Bearer …`) — for each, the characters that depend on the secret alone.
 *
 * @internal
 */
export const secretForms = (secret: string): ReadonlyArray<string> => {
  const known = forms.get(secret)
  if (known !== undefined) return known
  const out = new Set([secret, encodeURIComponent(secret)])
  const bytes = Buffer.from(secret, "utf8")
  for (let shift = 0; shift < 3; shift++) {
    const encoded = Buffer.concat([Buffer.alloc(shift), bytes]).toString("base64")
    // Skip the first group when it mixes in the bytes before, and the last when it mixes in those after.
    const core = encoded.slice(shift === 0 ? 0 : 4, Math.floor((shift + bytes.length) / 3) * 4)
    if (core.length >= 8) {
      out.add(core)
      out.add(core.replace(/\+/g, "-").replace(/\//g, "_"))
    }
  }
  // Longest first, so that a form containing another is replaced whole.
  const list = [...out].sort((a, b) => b.length - a.length)
  if (forms.size < 1024) forms.set(secret, list)
  return list
}

const keyLike = /\b(sk-(?:ant-)?[A-Za-z0-9_*.-]{6,})|\b([A-Za-z0-9_-]{24,}\*{2,}[A-Za-z0-9_-]*)/g

/** @internal */
export const scrubSecrets = (text: string, secrets: ReadonlyArray<string>, minLength = 8): string => {
  let out = text
  for (const secret of secrets) {
    if (secret.length < minLength) continue
    for (const form of secretForms(secret)) if (out.includes(form)) out = out.split(form).join("[redacted]")
  }
  return out.replace(keyLike, "[redacted]")
}

/** @internal */
export const scrubber = (secret: Redacted.Redacted<string> | ReadonlyArray<Redacted.Redacted<string>> | undefined): Scrub => {
  if (secret === undefined) return (text) => scrubSecrets(text, [])
  // A key shorter than 8 would match ordinary words; no real provider key is that short.
  const list: ReadonlyArray<Redacted.Redacted<string>> = Redacted.isRedacted(secret) ? [secret] : secret
  const values = list.map((s) => Redacted.value(s))
  return (text) => scrubSecrets(text, values)
}

/** Longest upstream error message passed on; a longer one is cut. */
const maxMessageLength = 512

// Markup or a stack trace is not a message meant for the client: the gateway says it itself.
const notAMessage = /<\s*\/?\s*[a-z!][^>]*>|\n\s*at\s|\bat\s+\S+\s+\(\S+:\d+:\d+\)|Traceback \(most recent call last\)|File "[^"]+", line \d+|Exception in thread|\.(java|py|go|rb|js|ts):\d+/i

/**
 * What of an upstream's error message may reach the client: scrubbed, cut to 512 characters,
 * and nothing at all when it looks like markup or a stack trace.
 *
 * @internal
 */
export const clientMessage = (message: string | undefined, scrub: Scrub): string | undefined => {
  if (message === undefined || notAMessage.test(message)) return undefined
  const clean = scrub(message)
  return clean.length <= maxMessageLength ? clean : `${clean.slice(0, maxMessageLength)}…`
}

const str = (u: unknown): string | undefined => (typeof u === "string" && u.length > 0 ? u : undefined)
// A provider code is an identifier (`context_length_exceeded`); anything else is not passed on.
const codeOf = (u: unknown): string | undefined => {
  const s = str(u)
  return s !== undefined && /^[A-Za-z0-9_.:-]{1,64}$/.test(s) ? s : undefined
}

/** @internal */
export const readErrorObject = (
  body: unknown,
  scrub: Scrub
): { readonly message?: string | undefined; readonly code?: string | undefined } => {
  if (body === null || typeof body !== "object") return {}
  const error = (body as { error?: unknown }).error
  if (typeof error === "string") return { message: clientMessage(error, scrub) }
  if (error !== null && typeof error === "object") {
    const e = error as { message?: unknown; code?: unknown; type?: unknown }
    return { message: clientMessage(str(e.message), scrub), code: codeOf(e.code) ?? codeOf(e.type) }
  }
  // vLLM and friends: `{"object":"error","message":…,"type":…,"code":400}`.
  const b = body as { message?: unknown; type?: unknown; code?: unknown }
  return { message: clientMessage(str(b.message), scrub), code: codeOf(b.code) ?? codeOf(b.type) }
}

/** @internal */
export const errorReader = (scrub: Scrub): UpstreamHttp.ErrorBodyReader => (body) => readErrorObject(body, scrub)

// The status an in-band error object stands for, from its type or code (OpenAI and Anthropic names).
const statusOfType: Record<string, number> = {
  invalid_request_error: 400,
  authentication_error: 401,
  permission_error: 403,
  not_found_error: 404,
  request_too_large: 413,
  rate_limit_error: 429,
  rate_limit_exceeded: 429,
  insufficient_quota: 429,
  api_error: 500,
  server_error: 500,
  overloaded_error: 529
}

/** @internal */
export const fromErrorObject = (upstream: string, error: unknown, scrub: Scrub): ModelError.ModelError => {
  const { code, message } = readErrorObject({ error }, scrub)
  const e = (error !== null && typeof error === "object" ? error : {}) as { status?: unknown; code?: unknown; type?: unknown }
  const status = typeof e.status === "number"
    ? e.status
    : typeof e.code === "number"
    ? e.code
    : statusOfType[str(e.type) ?? ""] ?? statusOfType[code ?? ""] ?? 500
  return ModelError.fromHttpFailure({ status, upstream, code, message: `${upstream}: ${message ?? "error event"}` })
}

/** @internal */
export type FrameOutcome = undefined | "done" | ModelError.ModelError

/** @internal */
export interface FrameContext {
  readonly emit: (chunk: ChatCompletion.ChatCompletionChunk) => void
  readonly heartbeat: () => void
  readonly interrupted: (reason: ModelError.InterruptionReason, message: string, cause?: unknown) => ModelError.StreamInterrupted
}

/** @internal */
export type FrameHandler = (event: SseCodec.SseEvent, context: FrameContext) => FrameOutcome

/** @internal */
export const sseChunks = (
  upstream: string,
  response: UpstreamHttp.Response,
  model: string,
  handler: FrameHandler
): Stream.Stream<ChatCompletion.ChatCompletionChunk, ModelError.ModelError> =>
  push.streamFromRun((_request, _options, sink) => readRecorded(upstream, response, sseReader(upstream, model, handler, sink, undefined)))(
    undefined as never
  )

/** Drives a reader from a Node stream (a recorded body), as the transport drives it from the socket. */
const readRecorded = (upstream: string, response: UpstreamHttp.Response, reader: UpstreamHttp.BodyReader): Effect.Effect<void, ModelError.ModelError> =>
  Effect.async<void, ModelError.ModelError>((resume) => {
    const body = response.body
    const maxBytes = response.maxStreamBytes ?? UpstreamHttp.defaults.maxStreamBytes
    let done = false
    let bytes = 0
    const finish = (result: Effect.Effect<void, ModelError.ModelError>, close: boolean) => {
      if (done) return
      done = true
      resume(result)
      if (close) body.destroy()
    }
    const guard = (f: () => void) => {
      try {
        f()
      } catch (defect) {
        finish(Effect.die(defect), true)
      }
    }
    reader.start({
      end: () => finish(Effect.void, true),
      fail: (error) => finish(Effect.fail(error), true),
      resume: () => {
        if (!done) body.resume()
      }
    })
    body.on("data", (data: Uint8Array) => {
      if (done) return
      bytes += data.length
      if (bytes > maxBytes) return finish(Effect.fail(UpstreamHttp.tooLarge(upstream, maxBytes, "stream")), true)
      guard(() => {
        if (!reader.data(data)) body.pause()
      })
    })
    body.once("end", () => guard(() => {
      reader.end()
      finish(Effect.void, false)
    }))
    body.once("error", (error) => guard(() => finish(Effect.fail(reader.error(error)), false)))
    return Effect.sync(() => finish(Effect.void, true))
  })

/** @internal */
export const encodeBody = (upstream: string, encode: () => string): Effect.Effect<string, ModelError.ModelError> =>
  Effect.try({
    try: encode,
    catch: (error) =>
      ModelError.isModelError(error) ? error : ModelError.localFailure("the request could not be encoded", error, upstream)
  })

/** @internal */
export const generateCall = (
  http: UpstreamHttp.UpstreamHttp,
  request: UpstreamHttp.Request,
  readError: UpstreamHttp.ErrorBodyReader,
  model: string,
  decode: (json: unknown) => Effect.Effect<ChatCompletion.ChatCompletion, ModelError.ModelError>,
  options?: LanguageModel.CallOptions | undefined
): Effect.Effect<ChatCompletion.ChatCompletion, ModelError.ModelError> =>
  RequestContext.of(options, (context) => {
    context.trace.attempts++
    const signal = context.signal
    const observed = context.observer?.attempt({ upstream: http.name, model, attempt: context.attempt, stream: false })
    if (observed !== undefined) request = observe.withHeaders(request, observed)
    // A limit above (the context's signal) stops the call wherever it is, with the limit's error.
    const call = Effect.flatMap(http.json(signal === undefined ? request : { ...request, signal }, readError), (json) =>
      Effect.map(decode(json), (completion) => {
        context.trace.upstream = http.name
        context.trace.model = completion.model || model
        return completion
      }))
    return observed === undefined ? call : observe.endOnExit(call, observed)
  })

/** @internal */
export const runCall = (
  http: UpstreamHttp.UpstreamHttp,
  request: UpstreamHttp.Request,
  readError: UpstreamHttp.ErrorBodyReader,
  model: string,
  handler: Effect.Effect<FrameHandler>,
  sink: LanguageModel.ChunkSink,
  options?: LanguageModel.CallOptions | undefined
): Effect.Effect<void, ModelError.ModelError> =>
  RequestContext.of(options, (context) =>
    Effect.flatMap(handler, (frames) => {
      context.trace.attempts++
      const observed = context.observer?.attempt({ upstream: http.name, model, attempt: context.attempt, stream: true })
      const call = http.stream(
        observed === undefined ? request : observe.withHeaders(request, observed),
        readError,
        sseReader(http.name, model, frames, observed === undefined ? sink : observe.observedSink(sink, observed), {
          accepted: () => {
            context.trace.upstream = http.name
            context.trace.model = model
          },
          first: (chunk) => {
            if (chunk.model) context.trace.model = chunk.model
          }
        })
      )
      return observed === undefined ? call : observe.endOnExit(call, observed)
    }))

/**
 * Decodes an SSE body as the socket delivers it and pushes the chunks of each read to the sink
 * in one batch: no fiber or effect per chunk. The sink's `false` pauses the socket until it calls
 * `resume`; its `abort` ends the call (before the headers too). Ends the call at the terminator
 * (the connection is kept) or at the first failure (the socket is closed).
 */
const sseReader = (
  upstream: string,
  model: string,
  handler: FrameHandler,
  sink: LanguageModel.ChunkSink,
  trace: {
    readonly accepted: () => void
    readonly first: (chunk: ChatCompletion.ChatCompletionChunk) => void
  } | undefined
): UpstreamHttp.BodyReader => {
  let control: UpstreamHttp.BodyControl
  let received = 0
  let id = ""
  let created = 0
  let out: Array<ChatCompletion.ChatCompletionChunk> = []
  let outcome: FrameOutcome = undefined
  const context: FrameContext = {
    emit: (chunk) => {
      out.push(chunk)
      if (received++ === 0) trace?.first(chunk)
      id = chunk.id
      model = chunk.model
      created = chunk.created
    },
    heartbeat: () => {
      out.push(ChatCompletion.heartbeat(id, model, created))
    },
    interrupted: (reason, message, cause) =>
      new ModelError.StreamInterrupted({ message: `${upstream}: ${message}`, upstream, reason, receivedChunks: received, cause })
  }
  const decoder = SseCodec.makeDecoder({
    onEvent: (event) => {
      if (outcome === undefined) outcome = handler(event, context)
    },
    onComment: () => {
      if (outcome === undefined) context.heartbeat()
    }
  })
  const flush = (): boolean => {
    if (out.length === 0) return true
    const batch = out
    out = []
    return sink.push(batch)
  }
  const settle = () => {
    flush()
    const o = outcome
    if (o === "done") control.end()
    else control.fail(o!)
  }
  return {
    start: (c) => {
      control = c
      sink.start({ abort: (error) => c.fail(error), resume: () => c.resume() })
    },
    head: trace === undefined ? undefined : () => trace.accepted(),
    data: (data) => {
      decoder.feed(data)
      if (outcome !== undefined) {
        settle()
        return true
      }
      return flush()
    },
    end: () => {
      if (outcome !== undefined) return
      decoder.end()
      if (outcome === undefined) outcome = context.interrupted("no-terminator", "the stream ended without its terminator")
      settle()
    },
    error: (cause) => {
      flush()
      return UpstreamHttp.mapTransportError(upstream, cause, "body", received)
    }
  }
}

/** @internal */
export const transportFields = {
  connections: Schema.optional(Schema.Int.pipe(Schema.positive())),
  connectTimeout: Schema.optional(Durations.DurationInput),
  headersTimeout: Schema.optional(Durations.DurationInput),
  bodyTimeout: Schema.optional(Durations.DurationInput),
  allowH2: Schema.optional(Schema.Boolean),
  maxResponseBytes: Schema.optional(Schema.Int.pipe(Schema.positive())),
  maxStreamBytes: Schema.optional(Schema.Int.pipe(Schema.positive()))
}

/** @internal */
export const transportOptions = (
  name: string,
  baseUrl: string,
  o: {
    readonly connections?: number | undefined
    readonly connectTimeout?: Duration.DurationInput | undefined
    readonly headersTimeout?: Duration.DurationInput | undefined
    readonly bodyTimeout?: Duration.DurationInput | undefined
    readonly allowH2?: boolean | undefined
    readonly maxResponseBytes?: number | undefined
    readonly maxStreamBytes?: number | undefined
  }
): UpstreamHttp.Options => ({
  name,
  baseUrl,
  connections: o.connections,
  connectTimeout: o.connectTimeout,
  headersTimeout: o.headersTimeout,
  bodyTimeout: o.bodyTimeout,
  allowH2: o.allowH2,
  maxResponseBytes: o.maxResponseBytes,
  maxStreamBytes: o.maxStreamBytes
})
