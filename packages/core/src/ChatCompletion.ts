/**
 * The canonical chat model: the OpenAI Chat Completions shape, which every SDK speaks.
 *
 * Requests are validated with these schemas at the edge (hosts); unknown provider fields are
 * kept (index signatures), so a field Breakwater does not know still reaches the upstream.
 * Responses and chunks are produced by adapters as plain objects of these types: the hot path
 * never runs a Schema decode per chunk.
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { plainRequest, plainRequestDepth } from "./internal/plainRequest.js"
import { knownFields, limitProblem } from "./internal/requestLimits.js"

const Extra = Schema.Record({ key: Schema.String, value: Schema.Unknown })
const optionalNullable = <S extends Schema.Schema.Any>(schema: S) => Schema.optional(Schema.NullOr(schema))

/**
 * A text content part.
 *
 * @since 0.1.0
 * @category schemas
 */
export const TextPart = Schema.Struct({ type: Schema.Literal("text"), text: Schema.String }, Extra)

/**
 * An image content part (URL or data URL).
 *
 * @since 0.1.0
 * @category schemas
 */
export const ImagePart = Schema.Struct(
  {
    type: Schema.Literal("image_url"),
    image_url: Schema.Struct({ url: Schema.String, detail: Schema.optional(Schema.Literal("auto", "low", "high")) })
  },
  Extra
)

/**
 * Any other content part a provider accepts (audio, files, …), passed through untouched.
 *
 * @since 0.1.0
 * @category schemas
 */
export const OtherPart = Schema.Struct(
  {
    type: Schema.String.pipe(
      Schema.filter((t) => t !== "text" && t !== "image_url", { message: () => "a text or image_url part is malformed" })
    )
  },
  Extra
)

/**
 * A content part of a user message.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ContentPart = Schema.Union(TextPart, ImagePart, OtherPart)

/**
 * A function call the model made.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ToolCall = Schema.Struct(
  {
    id: Schema.String,
    type: Schema.Literal("function"),
    function: Schema.Struct({ name: Schema.String, arguments: Schema.String })
  },
  Extra
)

/**
 * A system (or developer) message.
 *
 * @since 0.1.0
 * @category schemas
 */
export const SystemMessage = Schema.Struct(
  {
    role: Schema.Literal("system", "developer"),
    content: Schema.Union(Schema.String, Schema.Array(TextPart)),
    name: Schema.optional(Schema.String)
  },
  Extra
)

/**
 * A user message: text, or parts (text, images, …).
 *
 * @since 0.1.0
 * @category schemas
 */
export const UserMessage = Schema.Struct(
  {
    role: Schema.Literal("user"),
    content: Schema.Union(Schema.String, Schema.Array(ContentPart)),
    name: Schema.optional(Schema.String)
  },
  Extra
)

/**
 * An assistant message, possibly with tool calls.
 *
 * @since 0.1.0
 * @category schemas
 */
export const AssistantMessage = Schema.Struct(
  {
    role: Schema.Literal("assistant"),
    content: optionalNullable(Schema.Union(Schema.String, Schema.Array(ContentPart))),
    tool_calls: Schema.optional(Schema.Array(ToolCall)),
    refusal: optionalNullable(Schema.String),
    name: Schema.optional(Schema.String)
  },
  Extra
)

/**
 * The result of a tool call, sent back to the model.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ToolMessage = Schema.Struct(
  {
    role: Schema.Literal("tool"),
    content: Schema.Union(Schema.String, Schema.Array(TextPart)),
    tool_call_id: Schema.String
  },
  Extra
)

/**
 * Any chat message.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Message = Schema.Union(SystemMessage, UserMessage, AssistantMessage, ToolMessage)

/**
 * A tool (function) the model may call.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Tool = Schema.Struct(
  {
    type: Schema.Literal("function"),
    function: Schema.Struct(
      {
        name: Schema.String.pipe(Schema.pattern(/^[a-zA-Z0-9_-]{1,64}$/, {
          message: () => "a tool name is 1 to 64 letters, digits, '_' or '-'"
        })),
        description: Schema.optional(Schema.String),
        parameters: Schema.optional(Extra),
        strict: optionalNullable(Schema.Boolean)
      },
      Extra
    )
  },
  Extra
)

/**
 * How the model may use tools.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ToolChoice = Schema.Union(
  Schema.Literal("none", "auto", "required"),
  Schema.Struct({ type: Schema.Literal("function"), function: Schema.Struct({ name: Schema.String }) })
)

const Probability = Schema.Number.pipe(Schema.between(0, 1))
const PositiveInt = Schema.Int.pipe(Schema.positive())

/**
 * A chat completion request, as a client sends it.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ChatRequest = Schema.Struct(
  {
    model: Schema.String.pipe(Schema.minLength(1, { message: () => "model must not be empty" })),
    messages: Schema.NonEmptyArray(Message).annotations({ message: () => "messages must be a non-empty array of chat messages" }),
    stream: optionalNullable(Schema.Boolean),
    stream_options: optionalNullable(Schema.Struct({ include_usage: Schema.optional(Schema.Boolean) }, Extra)),
    temperature: optionalNullable(Schema.Number.pipe(Schema.between(0, 2))),
    top_p: optionalNullable(Probability),
    n: optionalNullable(PositiveInt),
    max_tokens: optionalNullable(PositiveInt),
    max_completion_tokens: optionalNullable(PositiveInt),
    stop: optionalNullable(Schema.Union(Schema.String, Schema.Array(Schema.String))),
    presence_penalty: optionalNullable(Schema.Number.pipe(Schema.between(-2, 2))),
    frequency_penalty: optionalNullable(Schema.Number.pipe(Schema.between(-2, 2))),
    seed: optionalNullable(Schema.Int),
    user: Schema.optional(Schema.String),
    tools: Schema.optional(Schema.Array(Tool)),
    tool_choice: Schema.optional(ToolChoice),
    parallel_tool_calls: Schema.optional(Schema.Boolean),
    response_format: Schema.optional(Extra),
    logprobs: optionalNullable(Schema.Boolean),
    top_logprobs: optionalNullable(Schema.Int.pipe(Schema.between(0, 20)))
  },
  Extra
)

/**
 * A chat completion request.
 *
 * @since 0.1.0
 * @category models
 */
export type ChatRequest = typeof ChatRequest.Type

/**
 * A chat message.
 *
 * @since 0.1.0
 * @category models
 */
export type Message = typeof Message.Type

/**
 * Token usage of a completion.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Usage = Schema.Struct(
  {
    prompt_tokens: Schema.Number,
    completion_tokens: Schema.Number,
    total_tokens: Schema.Number
  },
  Extra
)

/**
 * Token usage of a completion.
 *
 * @since 0.1.0
 * @category models
 */
export type Usage = typeof Usage.Type

/**
 * Why the model stopped. Providers add their own values, so any string is accepted.
 *
 * @since 0.1.0
 * @category schemas
 */
export const FinishReason = Schema.String

/**
 * A non-streaming chat completion.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ChatCompletion = Schema.Struct(
  {
    id: Schema.String,
    object: Schema.Literal("chat.completion"),
    created: Schema.Number,
    model: Schema.String,
    choices: Schema.Array(Schema.Struct(
      {
        index: Schema.Number,
        message: Schema.Struct(
          {
            role: Schema.Literal("assistant"),
            content: Schema.NullOr(Schema.String),
            tool_calls: Schema.optional(Schema.Array(ToolCall)),
            refusal: optionalNullable(Schema.String)
          },
          Extra
        ),
        finish_reason: Schema.NullOr(FinishReason),
        logprobs: Schema.optional(Schema.Unknown)
      },
      Extra
    )),
    usage: optionalNullable(Usage),
    system_fingerprint: optionalNullable(Schema.String)
  },
  Extra
)

/**
 * A non-streaming chat completion.
 *
 * @since 0.1.0
 * @category models
 */
export type ChatCompletion = typeof ChatCompletion.Type

/**
 * A fragment of a tool call inside a stream chunk; fragments with the same `index` concatenate.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ToolCallDelta = Schema.Struct(
  {
    index: Schema.Number,
    id: Schema.optional(Schema.String),
    type: Schema.optional(Schema.Literal("function")),
    function: Schema.optional(Schema.Struct({ name: Schema.optional(Schema.String), arguments: Schema.optional(Schema.String) }))
  },
  Extra
)

/**
 * A fragment of a tool call inside a stream chunk.
 *
 * @since 0.1.0
 * @category models
 */
export type ToolCallDelta = typeof ToolCallDelta.Type

/**
 * One chunk of a streamed chat completion.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ChatCompletionChunk = Schema.Struct(
  {
    id: Schema.String,
    object: Schema.Literal("chat.completion.chunk"),
    created: Schema.Number,
    model: Schema.String,
    choices: Schema.Array(Schema.Struct(
      {
        index: Schema.Number,
        delta: Schema.Struct(
          {
            role: Schema.optional(Schema.Literal("assistant")),
            content: optionalNullable(Schema.String),
            tool_calls: Schema.optional(Schema.Array(ToolCallDelta)),
            refusal: optionalNullable(Schema.String)
          },
          Extra
        ),
        finish_reason: Schema.NullOr(FinishReason),
        logprobs: Schema.optional(Schema.Unknown)
      },
      Extra
    )),
    usage: optionalNullable(Usage),
    system_fingerprint: optionalNullable(Schema.String)
  },
  Extra
)

/**
 * One chunk of a streamed chat completion.
 *
 * @since 0.1.0
 * @category models
 */
export type ChatCompletionChunk = typeof ChatCompletionChunk.Type

const decodeChatRequestEither = Schema.decodeUnknownEither(ChatRequest, { errors: "all", onExcessProperty: "preserve" })

/**
 * Bounds on what a request may carry beyond its known fields, checked before anything else
 * touches it: unknown fields are forwarded to the upstream as they are, and a value nested
 * thousands of levels deep overflows the stack of whatever encodes it later (a crash that would
 * look like an upstream failure).
 *
 * @since 0.2.0
 * @category models
 */
export interface RequestLimits {
  /** Levels of nested objects and arrays in the whole body (the body itself is level 1). */
  readonly maxDepth: number
  /** Serialized size (UTF-16 code units of its JSON) of all unknown fields together, top-level and in messages. */
  readonly maxUnknownFieldChars: number
}

/**
 * The default `RequestLimits` (the one place they are written): depth 64 — the deepest tool
 * parameter schemas providers accept are far shallower — and 1 MiB of unknown fields.
 *
 * @since 0.2.0
 * @category constants
 */
export const defaultRequestLimits: RequestLimits = { maxDepth: 64, maxUnknownFieldChars: 1024 * 1024 }

const known = knownFields(ChatRequest, Message.members)

/**
 * Validates an unknown value (a parsed request body) as a `ChatRequest`. A failure is one
 * readable message listing every problem by its path, e.g.
 * `messages.0.role: Expected "user", actual "usr"`. A body beyond `limits`
 * (`defaultRequestLimits`) fails before the schema sees it. A valid request may come back as
 * the input object itself rather than a copy: treat both as read-only.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeChatRequest = (
  input: unknown,
  limits: RequestLimits = defaultRequestLimits
): Either.Either<ChatRequest, string> => {
  // A request of the common shape is checked by plain reads and returned as it is: the Schema
  // would build a copy equal to it, at a cost every request pays. What that check accepts has
  // only known fields and is at most `plainRequestDepth` deep, so limits at least that generous
  // could not refuse it and are not measured; other limits take the general path.
  if (limits.maxDepth >= plainRequestDepth && limits.maxUnknownFieldChars >= 0) {
    const plain = plainRequest(input)
    if (plain !== undefined) return Either.right(plain)
  }
  const problem = limitProblem(input, limits, known)
  if (problem !== undefined) return Either.left(problem)
  return Either.mapLeft(decodeChatRequestEither(input), describeParseError)
}

/**
 * Formats a Schema parse error as `path: message` lines joined by `; ` (at most 8 of them).
 *
 * @since 0.1.0
 * @category decoding
 */
export const describeParseError = (error: ParseResult.ParseError): string => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
  const lines = issues.slice(0, 8).map((issue) =>
    issue.path.length === 0 ? issue.message : `${issue.path.join(".")}: ${issue.message}`
  )
  if (issues.length > 8) lines.push(`and ${issues.length - 8} more`)
  return lines.join("; ")
}

/**
 * The text content of a message (parts of type `text` joined), or `""`.
 *
 * @since 0.1.0
 * @category utils
 */
export const messageText = (message: Message): string => {
  const content = message.content
  if (typeof content === "string") return content
  if (content == null) return ""
  let text = ""
  for (const part of content) if (part.type === "text") text += (part as { text: string }).text
  return text
}

/**
 * Adds two usages (missing counts as zero); used to sum usage over attempts and resumes.
 *
 * @since 0.1.0
 * @category utils
 */
export const addUsage = (a: Usage | null | undefined, b: Usage | null | undefined): Usage => ({
  prompt_tokens: (a?.prompt_tokens ?? 0) + (b?.prompt_tokens ?? 0),
  completion_tokens: (a?.completion_tokens ?? 0) + (b?.completion_tokens ?? 0),
  total_tokens: (a?.total_tokens ?? 0) + (b?.total_tokens ?? 0)
})

/**
 * A heartbeat: a chunk with no choices and no usage. Adapters emit one for an upstream ping or
 * keep-alive comment so that idle timers see liveness; hosts never forward it as data.
 *
 * @since 0.1.0
 * @category constructors
 */
export const heartbeat = (id: string, model: string, created: number): ChatCompletionChunk => ({
  id,
  object: "chat.completion.chunk",
  created,
  model,
  choices: []
})

/**
 * Whether a chunk is a heartbeat (no choices, no usage).
 *
 * @since 0.1.0
 * @category guards
 */
export const isHeartbeat = (chunk: ChatCompletionChunk): boolean => chunk.choices.length === 0 && chunk.usage == null

/**
 * Whether a chunk carries content a user would call a token: text, a refusal or a tool-call
 * fragment. A role-only delta, a heartbeat or a usage chunk is not.
 *
 * @since 0.1.0
 * @category guards
 */
export const hasContent = (chunk: ChatCompletionChunk): boolean => {
  for (const choice of chunk.choices) {
    const d = choice.delta
    if ((d.content != null && d.content.length > 0) || (d.tool_calls !== undefined && d.tool_calls.length > 0) || (d.refusal != null && d.refusal.length > 0)) return true
  }
  return false
}

/**
 * The index of the first chunk of a batch with content (`hasContent`), `-1` when none has: the
 * scan the stream path's measures of the first token share (a time-to-first-token limit, a
 * breaker's slow-call measure, the router's latency samples).
 *
 * @since 0.2.0
 * @category utils
 */
export const firstContent = (chunks: ReadonlyArray<ChatCompletionChunk>): number => {
  for (let i = 0; i < chunks.length; i++) if (hasContent(chunks[i]!)) return i
  return -1
}
