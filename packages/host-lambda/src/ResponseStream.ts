/**
 * The Lambda response-streaming contract (`awslambda.streamifyResponse` and
 * `awslambda.HttpResponseStream.from`), typed, plus a faithful local implementation for tests and
 * local runs: `from` writes the JSON metadata prelude, then eight NUL bytes, then the body.
 *
 * @since 0.1.0
 */
import { Writable } from "node:stream"

/**
 * The status and headers sent before a streamed body.
 *
 * @since 0.1.0
 * @category models
 */
export interface Metadata {
  readonly statusCode: number
  readonly headers?: Record<string, string> | undefined
  readonly cookies?: ReadonlyArray<string> | undefined
}

/**
 * The runtime's global `awslambda`, when response streaming is available.
 *
 * @since 0.1.0
 * @category models
 */
export interface AwsLambdaGlobal {
  readonly streamifyResponse: <E, C>(
    handler: (event: E, responseStream: Writable, context: C) => Promise<void>
  ) => unknown
  readonly HttpResponseStream: { readonly from: (stream: Writable, metadata: Metadata) => Writable }
}

/**
 * The runtime's `awslambda` global, if this runtime streams responses.
 *
 * @since 0.1.0
 * @category utils
 */
export const runtimeGlobal = (): AwsLambdaGlobal | undefined => {
  const g = (globalThis as { awslambda?: Partial<AwsLambdaGlobal> }).awslambda
  return g?.streamifyResponse !== undefined && g.HttpResponseStream !== undefined ? (g as AwsLambdaGlobal) : undefined
}

/**
 * What a local response stream captured.
 *
 * @since 0.1.0
 * @category models
 */
export interface Captured {
  /** Every byte written, prelude included. */
  readonly bytes: () => Buffer
  /** The metadata prelude, parsed (undefined if `from` was never called). */
  readonly metadata: () => Metadata | undefined
  /** The body after the prelude, as text. */
  readonly body: () => string
  /** Body writes in order, as text (one per write call after the prelude). */
  readonly writes: ReadonlyArray<string>
  /** Resolves when the stream ended. */
  readonly ended: Promise<void>
}

const delimiter = Buffer.alloc(8, 0)

/**
 * A local implementation of the contract: a `Writable` that records what the runtime would
 * send, and an `awslambda` global to install on `globalThis` for the handler to find.
 *
 * @since 0.1.0
 * @category testing
 */
export const makeLocal = (): { readonly awslambda: AwsLambdaGlobal; readonly stream: () => { readonly writable: Writable; readonly captured: Captured } } => {
  const stream = () => {
    const chunks: Array<Buffer> = []
    const writes: Array<string> = []
    let preludeDone = false
    let resolveEnded!: () => void
    const ended = new Promise<void>((resolve) => {
      resolveEnded = resolve
    })
    const writable = new Writable({
      write(chunk: Buffer | string, _encoding, callback) {
        const buf = typeof chunk === "string" ? Buffer.from(chunk) : chunk
        chunks.push(buf)
        if (preludeDone) writes.push(buf.toString("utf8"))
        callback()
      },
      final(callback) {
        resolveEnded()
        callback()
      }
    })
    writable.once("close", () => resolveEnded())
    const all = () => Buffer.concat(chunks)
    const split = () => {
      const bytes = all()
      const at = bytes.indexOf(delimiter)
      return at === -1 ? undefined : { prelude: bytes.subarray(0, at), body: bytes.subarray(at + 8) }
    }
    const captured: Captured = {
      bytes: all,
      metadata: () => {
        const parts = split()
        return parts === undefined ? undefined : (JSON.parse(parts.prelude.toString("utf8")) as Metadata)
      },
      body: () => split()?.body.toString("utf8") ?? all().toString("utf8"),
      writes,
      ended
    }
    ;(writable as Writable & { markPrelude: () => void }).markPrelude = () => {
      preludeDone = true
    }
    return { writable, captured }
  }
  const awslambda: AwsLambdaGlobal = {
    streamifyResponse: (handler) => handler,
    HttpResponseStream: {
      from: (writable, metadata) => {
        writable.write(Buffer.concat([Buffer.from(JSON.stringify(metadata)), delimiter]))
        ;(writable as Writable & { markPrelude?: () => void }).markPrelude?.()
        return writable
      }
    }
  }
  return { awslambda, stream }
}
