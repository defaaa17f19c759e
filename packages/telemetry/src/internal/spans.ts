import { ChatCompletion, type RequestObserver } from "@breakwater/core"
import * as api from "@opentelemetry/api"
import type { W3CTraceContextPropagator } from "@opentelemetry/core"

/** What a request span needs from the `Telemetry` that made it. */
export interface Tracing {
  readonly tracer: api.Tracer
  readonly propagator: W3CTraceContextPropagator
  readonly captureContent: boolean
  /** The provider family of an upstream (`gen_ai.provider.name`), when known. */
  readonly providerOf: (upstream: string) => string | undefined
}

/** The client request a span is started for. */
export interface RequestInfo {
  readonly requestId: string
  readonly operation: string
  readonly request: ChatCompletion.ChatRequest | undefined
  readonly headers: Readonly<Record<string, string | ReadonlyArray<string> | undefined>> | undefined
}

type Headers = NonNullable<RequestInfo["headers"]>

/** Reads a header whatever its case (Node lowercases them, a Lambda event may not). */
const headerGetter: api.TextMapGetter<Headers> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    const direct = carrier[key]
    if (direct !== undefined) return direct as string | Array<string>
    for (const name of Object.keys(carrier)) if (name.toLowerCase() === key) return carrier[name] as string | Array<string> | undefined
    return undefined
  }
}

const headerSetter: api.TextMapSetter<Record<string, string>> = {
  set: (carrier, key, value) => {
    carrier[key] = value
  }
}

/**
 * The error's type: a tagged error's tag, else the `code` of the answer a client was sent (a
 * gateway `ApiError`: `upstream_timeout`, `client_closed`, …), else the error's name.
 */
const errorType = (error: unknown): string => {
  if (error !== null && typeof error === "object") {
    const { _tag, code } = error as { _tag?: unknown; code?: unknown }
    if (typeof _tag === "string") return _tag
    if (typeof code === "string") return code
  }
  return error instanceof Error ? error.name : "Error"
}

const messagesOf = (request: ChatCompletion.ChatRequest): string => JSON.stringify(request.messages)

/** The policy decisions, as span events: the name and the attributes of each. */
const eventOf = (event: RequestObserver.PolicyEvent): readonly [string, api.Attributes] => {
  switch (event._tag) {
    case "Retry":
      return ["breakwater.retry", { "breakwater.attempt": event.attempt, "error.type": event.reason, "breakwater.retry.wait_ms": event.waitMillis }]
    case "RetryRefused":
      return ["breakwater.retry.refused", { "breakwater.attempt": event.attempt, "error.type": event.reason, "breakwater.retry.refused_by": event.why }]
    case "BreakerRejected":
      return ["breakwater.circuit_breaker.rejected", {
        "breakwater.circuit_breaker.key": event.key,
        "breakwater.circuit_breaker.retry_after_ms": event.retryAfterMillis
      }]
    case "BreakerTransition":
      return ["breakwater.circuit_breaker.transition", {
        "breakwater.circuit_breaker.key": event.key,
        "breakwater.circuit_breaker.from": event.from,
        "breakwater.circuit_breaker.to": event.to
      }]
    case "Timeout":
      return ["breakwater.timeout", {
        "breakwater.timeout.phase": event.phase,
        "breakwater.timeout.limit_ms": event.limitMillis,
        "breakwater.timeout.received_chunks": event.receivedChunks,
        ...(event.upstream === undefined ? {} : { "breakwater.upstream": event.upstream })
      }]
    case "TargetSkipped":
      return ["breakwater.router.skipped", { "breakwater.router.target": event.target }]
    case "Fallback":
      return ["breakwater.fallback", { "breakwater.fallback.from": event.from, "breakwater.fallback.to": event.to, "error.type": event.reason }]
    case "Hedge":
      return ["breakwater.hedge", {
        "breakwater.hedge.outcome": event.outcome,
        ...(event.delayMillis === undefined ? {} : { "breakwater.hedge.delay_ms": event.delayMillis })
      }]
    case "Resume": {
      const attributes: api.Attributes = { "breakwater.resume.outcome": event.outcome }
      if (event.reason !== undefined) attributes["breakwater.resume.reason"] = event.reason
      if (event.seam !== undefined) attributes["breakwater.resume.seam"] = event.seam
      if (event.splice !== undefined) attributes["breakwater.resume.seam_kind"] = event.splice
      if (event.droppedChars !== undefined) attributes["breakwater.resume.overlap_trimmed_chars"] = event.droppedChars
      return ["breakwater.resume", attributes]
    }
    case "JournalReplay":
      return ["breakwater.journal.replay", {
        "breakwater.journal.replayed_events": event.events,
        ...(event.lastEventId === undefined ? {} : { "breakwater.journal.last_event_id": event.lastEventId })
      }]
  }
}

/** What the request span keeps of its last successful attempt, and the usage summed over all. */
interface Summary {
  responseId: string | undefined
  responseModel: string | undefined
  finishReasons: Array<string> | undefined
  inputTokens: number
  outputTokens: number
  usage: boolean
}

/** One upstream attempt: a CLIENT span, child of the request span. */
class AttemptSpan implements RequestObserver.AttemptObserver {
  readonly headers: Readonly<Record<string, string>> | undefined
  private readonly startedAt = performance.now()
  private firstTokenAt: number | undefined
  private responseId: string | undefined
  private responseModel: string | undefined
  private finishReasons: Array<string> | undefined
  private usage: ChatCompletion.Usage | undefined
  private text: Array<string> | undefined
  private ended = false

  constructor(
    private readonly owner: RequestSpan,
    private readonly span: api.Span,
    propagator: W3CTraceContextPropagator,
    captureContent: boolean
  ) {
    const carrier: Record<string, string> = {}
    propagator.inject(api.trace.setSpan(api.ROOT_CONTEXT, span), carrier, headerSetter)
    this.headers = carrier
    if (captureContent) this.text = []
  }

  readonly chunks = (chunks: ReadonlyArray<ChatCompletion.ChatCompletionChunk>): void => {
    for (let i = 0; i < chunks.length; i++) {
      const chunk = chunks[i]!
      if (this.firstTokenAt === undefined && ChatCompletion.hasContent(chunk)) this.firstTokenAt = performance.now()
      if (chunk.id) this.responseId = chunk.id
      if (chunk.model) this.responseModel = chunk.model
      if (chunk.usage != null) this.usage = chunk.usage
      const choices = chunk.choices
      for (let j = 0; j < choices.length; j++) {
        const choice = choices[j]!
        if (choice.finish_reason != null) (this.finishReasons ??= []).push(choice.finish_reason)
        if (this.text !== undefined && choice.index === 0 && typeof choice.delta.content === "string") this.text.push(choice.delta.content)
      }
    }
  }

  readonly end = (outcome: RequestObserver.AttemptOutcome): void => {
    if (this.ended) return
    this.ended = true
    const span = this.span
    if (outcome._tag === "Success" && outcome.completion !== undefined) {
      const completion = outcome.completion
      if (this.firstTokenAt === undefined) this.firstTokenAt = performance.now()
      this.responseId = completion.id
      this.responseModel = completion.model
      this.finishReasons = completion.choices.flatMap((c) => (c.finish_reason == null ? [] : [c.finish_reason]))
      if (completion.usage != null) this.usage = completion.usage
      if (this.text !== undefined) this.text.push(completion.choices[0]?.message.content ?? "")
    }
    if (this.firstTokenAt !== undefined) span.setAttribute("gen_ai.server.time_to_first_token", (this.firstTokenAt - this.startedAt) / 1000)
    if (this.responseId !== undefined) span.setAttribute("gen_ai.response.id", this.responseId)
    if (this.responseModel !== undefined) span.setAttribute("gen_ai.response.model", this.responseModel)
    if (this.finishReasons !== undefined) span.setAttribute("gen_ai.response.finish_reasons", this.finishReasons)
    if (this.usage !== undefined) {
      span.setAttribute("gen_ai.usage.input_tokens", this.usage.prompt_tokens)
      span.setAttribute("gen_ai.usage.output_tokens", this.usage.completion_tokens)
    }
    if (this.text !== undefined && this.text.length > 0) {
      span.setAttribute("gen_ai.output.messages", JSON.stringify([{ role: "assistant", content: this.text.join("") }]))
    }
    switch (outcome._tag) {
      case "Success":
        span.setAttribute("breakwater.outcome", "success")
        break
      case "Failure":
        span.setAttribute("breakwater.outcome", "failure")
        span.setAttribute("error.type", outcome.error._tag)
        // The type only: an upstream's message may quote the request.
        span.setStatus({ code: api.SpanStatusCode.ERROR })
        break
      case "Defect":
        span.setAttribute("breakwater.outcome", "defect")
        span.setAttribute("error.type", "defect")
        span.setStatus({ code: api.SpanStatusCode.ERROR })
        break
      case "Interrupted":
        span.setAttribute("breakwater.outcome", "cancelled")
        break
    }
    span.end()
    this.owner.attemptEnded(outcome._tag === "Success", {
      responseId: this.responseId,
      responseModel: this.responseModel,
      finishReasons: this.finishReasons,
      inputTokens: this.usage?.prompt_tokens ?? 0,
      outputTokens: this.usage?.completion_tokens ?? 0,
      usage: this.usage !== undefined
    })
  }
}

/** One client request: a SERVER span, continuing the caller's trace when it sent one. */
export class RequestSpan implements RequestObserver.RequestObserver {
  private readonly context: api.Context
  private readonly model: string | undefined
  private attempts = 0
  private retries = 0
  private fallbacks = 0
  private resumes = 0
  private summary: Summary | undefined
  private inputTokens = 0
  private outputTokens = 0
  private usage = false
  private ended = false

  /** The request span itself, for a host that adds attributes of its own. */
  readonly span: api.Span

  constructor(private readonly tracing: Tracing, info: RequestInfo) {
    const parent = info.headers === undefined
      ? api.ROOT_CONTEXT
      : tracing.propagator.extract(api.ROOT_CONTEXT, info.headers, headerGetter)
    const request = info.request
    this.model = request?.model
    const attributes: api.Attributes = {
      "gen_ai.operation.name": info.operation,
      "breakwater.request_id": info.requestId
    }
    if (request !== undefined) {
      attributes["gen_ai.request.model"] = request.model
      if (request.stream === true) attributes["breakwater.stream"] = true
      const maxTokens = request.max_completion_tokens ?? request.max_tokens
      if (maxTokens != null) attributes["gen_ai.request.max_tokens"] = maxTokens
      if (request.temperature != null) attributes["gen_ai.request.temperature"] = request.temperature
      if (request.top_p != null) attributes["gen_ai.request.top_p"] = request.top_p
      if (tracing.captureContent) attributes["gen_ai.input.messages"] = messagesOf(request)
    }
    this.span = tracing.tracer.startSpan(
      this.model === undefined ? info.operation : `${info.operation} ${this.model}`,
      { kind: api.SpanKind.SERVER, attributes },
      parent
    )
    this.context = api.trace.setSpan(parent, this.span)
  }

  /** The W3C `traceparent` of the request span (for a response header, a log line). */
  get traceparent(): string {
    const c = this.span.spanContext()
    return `00-${c.traceId}-${c.spanId}-0${(c.traceFlags & api.TraceFlags.SAMPLED).toString(16)}`
  }

  readonly attempt = (info: RequestObserver.AttemptInfo): RequestObserver.AttemptObserver | undefined => {
    if (this.ended) return undefined
    this.attempts++
    const tracing = this.tracing
    const attributes: api.Attributes = {
      "gen_ai.operation.name": "chat",
      "gen_ai.request.model": info.model,
      "breakwater.upstream": info.upstream,
      "breakwater.attempt": info.attempt
    }
    const provider = tracing.providerOf(info.upstream)
    if (provider !== undefined) attributes["gen_ai.provider.name"] = provider
    if (info.stream) attributes["breakwater.stream"] = true
    const span = tracing.tracer.startSpan(`chat ${info.model}`, { kind: api.SpanKind.CLIENT, attributes }, this.context)
    return new AttemptSpan(this, span, tracing.propagator, tracing.captureContent)
  }

  readonly event = (event: RequestObserver.PolicyEvent): void => {
    if (event._tag === "Retry") this.retries++
    else if (event._tag === "Fallback") this.fallbacks++
    else if (event._tag === "Resume" && event.outcome === "resumed") this.resumes++
    if (!this.span.isRecording()) return
    const [name, attributes] = eventOf(event)
    this.span.addEvent(name, attributes)
  }

  /** @internal */
  attemptEnded(succeeded: boolean, summary: Summary): void {
    if (summary.usage) {
      this.usage = true
      this.inputTokens += summary.inputTokens
      this.outputTokens += summary.outputTokens
    }
    if (succeeded) this.summary = summary
  }

  /** Ends the request span: with the error the client was sent, if any. Called once. */
  readonly end = (error?: unknown): void => {
    if (this.ended) return
    this.ended = true
    const span = this.span
    span.setAttribute("breakwater.attempts", this.attempts)
    if (this.retries > 0) span.setAttribute("breakwater.retries", this.retries)
    if (this.fallbacks > 0) span.setAttribute("breakwater.fallbacks", this.fallbacks)
    if (this.resumes > 0) span.setAttribute("breakwater.resumes", this.resumes)
    const s = this.summary
    if (s?.responseId !== undefined) span.setAttribute("gen_ai.response.id", s.responseId)
    if (s?.responseModel !== undefined) span.setAttribute("gen_ai.response.model", s.responseModel)
    if (s?.finishReasons !== undefined) span.setAttribute("gen_ai.response.finish_reasons", s.finishReasons)
    if (this.usage) {
      // Summed over every upstream attempt, as the client's final chunk sums it.
      span.setAttribute("gen_ai.usage.input_tokens", this.inputTokens)
      span.setAttribute("gen_ai.usage.output_tokens", this.outputTokens)
    }
    if (error !== undefined) {
      const status = (error as { status?: unknown } | null)?.status
      if (typeof status === "number") span.setAttribute("http.response.status_code", status)
      span.setAttribute("error.type", errorType(error))
      span.setStatus({ code: api.SpanStatusCode.ERROR })
    }
    span.end()
  }
}
