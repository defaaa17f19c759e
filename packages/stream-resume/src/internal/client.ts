import type { Options, ReconnectInfo } from "../ResumeClient.js"
import { ResumeError } from "../ResumeClient.js"
import { SseParser } from "./clientSse.js"

const DEFAULTS = { maxAttempts: 5, initialDelayMs: 250, maxDelayMs: 5_000 } as const

const randomKey = (): string => {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto
  if (c?.randomUUID !== undefined) return c.randomUUID()
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}-${Math.random().toString(36).slice(2)}`
}

const sleep = (ms: number, signal: AbortSignal | undefined) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    const onAbort = () => {
      clearTimeout(timer)
      reject(signal!.reason)
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort)
      resolve()
    }, ms)
    signal?.addEventListener("abort", onAbort, { once: true })
  })

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

const messageOf = (body: unknown, fallback: string): string => {
  const error = typeof body === "object" && body !== null ? (body as { error?: { message?: unknown } }).error : undefined
  return typeof error?.message === "string" ? error.message : fallback
}

/** Statuses worth another connection: the gateway's own overload and transient proxy errors. */
const retryableStatus = (status: number) => status === 408 || status === 429 || status === 502 || status === 503 || status === 504

/** Why a connection ended without the stream's terminal event. */
type Broken = { readonly _tag: "Broken"; readonly error: unknown }

export async function* stream<T>(options: Options): AsyncGenerator<T, void, undefined> {
  const doFetch = options.fetch ?? globalThis.fetch
  const maxAttempts = options.maxAttempts ?? DEFAULTS.maxAttempts
  const initialDelayMs = options.initialDelayMs ?? DEFAULTS.initialDelayMs
  const maxDelayMs = options.maxDelayMs ?? DEFAULTS.maxDelayMs
  const signal = options.signal
  const idempotencyKey = options.idempotencyKey ?? randomKey()
  const body = JSON.stringify({ ...options.body, stream: true })
  let lastEventId: string | undefined
  let hintMs: number | undefined
  let failures = 0
  let anonymous = false

  for (;;) {
    let broken: Broken = { _tag: "Broken", error: undefined }
    const headers: Record<string, string> = {
      "content-type": "application/json",
      accept: "text/event-stream",
      ...options.headers,
      "idempotency-key": idempotencyKey
    }
    if (lastEventId !== undefined) headers["last-event-id"] = lastEventId
    let response: Response | undefined
    try {
      response = await doFetch(options.url, { method: "POST", headers, body, ...(signal === undefined ? {} : { signal }) })
    } catch (error) {
      if (signal?.aborted) throw error
      broken = { _tag: "Broken", error }
    }
    if (response !== undefined) {
      if (response.status === 204) {
        // Finished (and we had its end already) or expired: either way nothing more will come.
        throw new ResumeError("the stream can no longer be resumed: it finished or expired", 204, undefined)
      }
      if (!response.ok || response.body === null) {
        const text = await response.text().catch(() => "")
        const parsed = parseJson(text)
        if (!retryableStatus(response.status)) {
          throw new ResumeError(messageOf(parsed, `HTTP ${response.status}`), response.status, parsed)
        }
        broken = { _tag: "Broken", error: new ResumeError(messageOf(parsed, `HTTP ${response.status}`), response.status, parsed) }
      } else {
        const reader = response.body.getReader()
        const decoder = new TextDecoder()
        const parser = new SseParser()
        let progressed = false
        try {
          for (;;) {
            let chunk: Awaited<ReturnType<typeof reader.read>>
            try {
              chunk = await reader.read()
            } catch (error) {
              if (signal?.aborted) throw error
              broken = { _tag: "Broken", error }
              break
            }
            // At the end, an event without its blank line is incomplete and is dropped (SSE rules).
            const events = parser.push(chunk.done ? decoder.decode() : decoder.decode(chunk.value, { stream: true }))
            if (parser.retryMs !== undefined) hintMs = parser.retryMs
            for (const event of events) {
              if (event.data === "[DONE]") return
              const value = parseJson(event.data)
              if (typeof value === "object" && value !== null && "error" in value) {
                // The gateway ended the stream with an error event: final, not a broken connection.
                throw new ResumeError(messageOf(value, "the stream ended with an error"), 200, value)
              }
              if (event.id === undefined) anonymous = true
              else lastEventId = event.id
              progressed = true
              yield value as T
            }
            if (chunk.done) {
              broken = { _tag: "Broken", error: new Error("the stream ended without its terminal event") }
              break
            }
          }
        } finally {
          reader.cancel().catch(() => undefined)
        }
        if (progressed) failures = 0
      }
    }
    failures++
    if (anonymous) {
      // Events without ids: the server does not journal, and asking again would repeat them.
      throw new ResumeError("the stream broke and the server does not support resuming it", undefined, broken.error)
    }
    if (failures >= maxAttempts) {
      throw new ResumeError(`the stream broke and ${maxAttempts} reconnects in a row failed`, undefined, broken.error)
    }
    const base = hintMs ?? initialDelayMs
    const delay = Math.min(maxDelayMs, base * 2 ** (failures - 1))
    const info: ReconnectInfo = { attempt: failures, lastEventId, delayMs: delay, error: broken.error }
    options.onReconnect?.(info)
    await sleep(delay, signal)
  }
}
