/**
 * The mock upstream's deterministic answers: a pure function of the first user message and a
 * word count, plus continuation handling (prefill and user-instruction) against that text.
 */

const vocabulary = [
  "the", "gateway", "keeps", "streams", "steady", "when", "upstreams", "fail", "and", "retries",
  "café", "naïve", "—", "日本語", "🌊", "résumé", "with", "care", "so", "agents", "act", "once", "."
]

const hash = (text: string): number => {
  let h = 2166136261
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619)
  return h >>> 0
}

/** The words of the answer to `seed` (each but the last followed by a space). */
export const words = (seed: string, count: number): Array<string> => {
  let state = hash(seed) || 1
  const out: Array<string> = []
  for (let i = 0; i < count; i++) {
    state = Math.imul(state ^ (state >>> 15), 2246822507) >>> 0
    state = (state ^ (state >>> 13)) >>> 0
    // Word 3 is always multi-byte so UTF-8 splitting is exercised in every answer.
    const word = i === 3 ? "🌊" : vocabulary[state % vocabulary.length]!
    out.push(i === count - 1 ? word : `${word} `)
  }
  return out
}

export const fullText = (seed: string, count: number): string => words(seed, count).join("")

type Content = string | null | undefined | ReadonlyArray<{ readonly type?: string; readonly text?: string }>

export interface WireMessage {
  readonly role: string
  readonly content?: Content
}

export const contentText = (content: Content): string => {
  if (typeof content === "string") return content
  if (content == null) return ""
  let text = ""
  for (const part of content) if (part.type === "text" && typeof part.text === "string") text += part.text
  return text
}

/** The seed of a request: its first user message (continuations keep it, so they share the text). */
export const seedOf = (messages: ReadonlyArray<WireMessage> | undefined): string => {
  const first = (messages ?? []).find((m) => m.role === "user")
  return first === undefined ? "" : contentText(first.content)
}

export interface Plan {
  /** The text this response carries. */
  readonly text: string
  /** `prefill` or `instruction` when the request continues a partial answer of this mock. */
  readonly continuation: "prefill" | "instruction" | undefined
}

/**
 * What to answer: the full text, or for a continuation, the rest after the delivered partial
 * (with `overlap` characters of it repeated, or from the start when `restart`).
 */
export const plan = (
  messages: ReadonlyArray<WireMessage> | undefined,
  count: number,
  knobs: { readonly overlap?: number | undefined; readonly restart?: boolean | undefined } = {}
): Plan => {
  const list = messages ?? []
  const full = fullText(seedOf(list), count)
  const last = list[list.length - 1]
  const beforeLast = list[list.length - 2]
  let partial: string | undefined
  let continuation: Plan["continuation"]
  if (last?.role === "assistant") {
    // Providers continue a right-trimmed prefill; the rest starts with the trimmed whitespace.
    partial = contentText(last.content).trimEnd()
    continuation = "prefill"
  } else if (last?.role === "user" && beforeLast?.role === "assistant") {
    const candidate = contentText(beforeLast.content)
    if (candidate.length > 0 && full.startsWith(candidate)) {
      partial = candidate
      continuation = "instruction"
    }
  }
  if (partial === undefined || !full.startsWith(partial)) return { text: full, continuation: undefined }
  if (knobs.restart === true) return { text: full, continuation }
  let from = partial.length - Math.max(0, knobs.overlap ?? 0)
  if (from < 0) from = 0
  // Never start inside a surrogate pair.
  const code = full.charCodeAt(from)
  if (from > 0 && code >= 0xdc00 && code <= 0xdfff) from--
  return { text: full.slice(from), continuation }
}

/** The text split into stream chunks: one per word (a continuation may start mid-word). */
export const chunks = (text: string): Array<string> => text.match(/\s*\S+\s*/gu) ?? (text.length > 0 ? [text] : [])

/** The arguments of the mock's tool call, streamed in several pieces. */
export const toolArguments = (seed: string): { readonly name: string; readonly pieces: ReadonlyArray<string> } => {
  const args = JSON.stringify({ city: "Zürich", days: (hash(seed) % 7) + 1, units: "metric", note: "🌊 tide" })
  const points = Array.from(args)
  const pieces: Array<string> = []
  for (let i = 0; i < points.length; i += 9) pieces.push(points.slice(i, i + 9).join(""))
  return { name: "get_forecast", pieces }
}
