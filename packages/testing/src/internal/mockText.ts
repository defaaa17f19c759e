/**
 * The mock upstream's deterministic answers: a pure function of the last user message and a word
 * count, plus continuation handling (assistant prefill and user instruction) against that text.
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
  if (content == null || !Array.isArray(content)) return ""
  let text = ""
  for (const part of content) if (part?.type === "text" && typeof part.text === "string") text += part.text
  return text
}

const lastUserText = (messages: ReadonlyArray<WireMessage>, end: number): string | undefined => {
  for (let i = end - 1; i >= 0; i--) if (messages[i]!.role === "user") return contentText(messages[i]!.content)
  return undefined
}

const isInstruction = (text: string): boolean => /continu/i.test(text)

/**
 * The longest piece (at least `min` characters) of `needle` found in `haystack`, as the end
 * offset of its first occurrence in `haystack`: where a continuation instruction that quotes the
 * tail of the delivered text says the delivered text stopped.
 */
const endOfLongestShared = (needle: string, haystack: string, min: number): number | undefined => {
  let best = 0
  let bestEnd = -1
  let previous = new Uint16Array(haystack.length + 1)
  let current = new Uint16Array(haystack.length + 1)
  for (let i = 1; i <= needle.length; i++) {
    const c = needle.charCodeAt(i - 1)
    for (let j = 1; j <= haystack.length; j++) {
      const run = haystack.charCodeAt(j - 1) === c ? previous[j - 1]! + 1 : 0
      current[j] = run
      if (run > best || (run === best && run > 0 && j < bestEnd)) {
        best = run
        bestEnd = j
      }
    }
    const t = previous
    previous = current
    current = t
  }
  return best >= min ? bestEnd : undefined
}

export interface Plan {
  /** The full answer to the request (what `textFor` returns). */
  readonly full: string
  /** The text this response carries: `full`, or its rest for a continuation. */
  readonly text: string
  /** `prefill` or `instruction` when the request continues a partial answer of this mock. */
  readonly continuation: "prefill" | "instruction" | undefined
}

/**
 * What to answer. The answer is seeded by the last user message; a request that continues a
 * partial answer is seeded by the request before the continuation was added, so both share one
 * text:
 * - a trailing assistant message is a prefill (providers right-trim it and continue it);
 * - a trailing user message asking to continue (the word "continu…"), after an assistant message
 *   holding the delivered text, or quoting the tail of the delivered text, is an instruction.
 * The rest starts after the delivered text (minus `overlap` characters repeated), or from the
 * start when `restart`. A request whose partial is not a prefix of the text gets the full text.
 */
export const plan = (
  messages: ReadonlyArray<WireMessage> | undefined,
  count: number,
  knobs: { readonly overlap?: number | undefined; readonly restart?: boolean | undefined; readonly text?: string | undefined } = {}
): Plan => {
  const list = messages ?? []
  const n = list.length
  const last = list[n - 1]
  const textOf = (seed: string | undefined) => knobs.text ?? fullText(seed ?? "", count)
  let full: string | undefined
  let partial: string | undefined
  let continuation: Plan["continuation"]
  if (last?.role === "assistant") {
    full = textOf(lastUserText(list, n - 1))
    const prefill = contentText(last.content).trimEnd()
    if (full.startsWith(prefill)) {
      partial = prefill
      continuation = "prefill"
    }
  } else if (last?.role === "user" && n >= 2) {
    const instruction = contentText(last.content)
    if (isInstruction(instruction)) {
      const before = list[n - 2]!
      const seed = lastUserText(list, before.role === "assistant" ? n - 2 : n - 1)
      if (seed !== undefined) {
        const candidate = textOf(seed)
        const delivered = before.role === "assistant" ? contentText(before.content) : ""
        if (delivered.length > 0 && candidate.startsWith(delivered)) {
          partial = delivered
        } else {
          const end = endOfLongestShared(instruction, candidate, 8)
          if (end !== undefined) partial = candidate.slice(0, end)
        }
        if (partial !== undefined) {
          full = candidate
          continuation = "instruction"
        }
      }
    }
  }
  if (full === undefined || partial === undefined) {
    const text = full ?? textOf(lastUserText(list, n))
    return { full: text, text, continuation: undefined }
  }
  if (knobs.restart === true) return { full, text: full, continuation }
  let from = partial.length - Math.max(0, knobs.overlap ?? 0)
  if (from < 0) from = 0
  // Never start inside a surrogate pair.
  const code = full.charCodeAt(from)
  if (from > 0 && code >= 0xdc00 && code <= 0xdfff) from--
  return { full, text: full.slice(from), continuation }
}

/** The seed text of a plain request: its last user message. */
export const seedOf = (messages: ReadonlyArray<WireMessage> | undefined): string => lastUserText(messages ?? [], (messages ?? []).length) ?? ""

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
