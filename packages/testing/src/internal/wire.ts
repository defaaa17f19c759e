/**
 * What a provider's wire format gives the mock: error bodies, the non-streaming completion and
 * the stream's frames for one answer, and the frames its faults and pings write.
 */

/** One answer, independent of the wire format it is written in. */
export interface Answer {
  readonly id: string
  readonly created: number
  readonly model: string
  /** The answer text (empty for a tool call). */
  readonly text: string
  /** Its stream pieces: one per word, or the tool call's argument pieces. */
  readonly pieces: ReadonlyArray<string>
  /** The tool called instead of answering with text. */
  readonly tool: string | undefined
  readonly promptTokens: number
  /** The request asked for a usage chunk (OpenAI's `stream_options.include_usage`). */
  readonly includeUsage: boolean
}

export interface Frames {
  /** Frames before the content (role chunk; Anthropic's message_start, block start and ping). */
  readonly head: ReadonlyArray<Buffer>
  /** One frame per content chunk. */
  readonly content: ReadonlyArray<Buffer>
  /** Frames after the content, the terminator excepted. */
  readonly tail: ReadonlyArray<Buffer>
  readonly terminator: Buffer
}

export interface Wire {
  /** The prefix of the response ids (a counter follows). */
  readonly idPrefix: string
  readonly errorBody: (status: number, message: string) => Buffer
  readonly completion: (answer: Answer) => Buffer
  readonly frames: (answer: Answer) => Frames
  /** Written every `pingEveryMs` while a stream is open. */
  readonly ping: Buffer
  /** The `Malformed` fault's truncated frame. */
  readonly malformed: Buffer
  /** The `ErrorEvent` fault's in-band error. */
  readonly errorEvent: Buffer
}

/** The message a provider sends with an error status when the behavior gives none. */
export const defaultMessage = (status: number): string =>
  status === 429 ? "Rate limit reached for requests. Please try again later." :
  status === 529 ? "Overloaded" :
  status >= 500 ? "The server had an error while processing your request. Sorry about that!" :
  status === 401 ? "Incorrect API key provided." :
  status === 403 ? "Your API key does not have permission to use the specified resource." :
  status === 404 ? "The model does not exist or you do not have access to it." : "Invalid request."

/** `data: <json>` as one SSE frame. */
export const dataFrame = (json: unknown): Buffer => Buffer.from(`data: ${JSON.stringify(json)}\n\n`)
