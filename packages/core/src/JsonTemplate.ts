/**
 * A `JSON.parse` for stream events that skips the parse when an event has the shape of one seen
 * before and differs from it only in some strings and numbers. A model's stream events repeat
 * a few shapes: in an OpenAI chunk only the id, the timestamp, the model, the text
 * (`choices[0].delta.content`) and `obfuscation` change from one event, or one stream, to the
 * next; the structure and the other fields are the same. Parsing every event was about a third
 * of the gateway's instructions per back-to-back stream (BENCHMARKS.md).
 *
 * After an event is parsed in full, the parser learns it as a template: its text split around
 * the string and number tokens at the given paths. An event that is a template's text with
 * other tokens in those places gets the template's value with the new values put in (the
 * objects on their paths copied, the rest shared with the template's value). Any other event
 * is parsed in full. The result equals `JSON.parse(text)` in every case, keys in the same
 * order, and a malformed event throws as `JSON.parse` does.
 *
 * One parser serves every stream of an upstream (its templates hold no stream's state beyond the
 * text they were learned from), so a stream costs no memory of its own and learns nothing anew.
 * The objects returned are immutable by contract (a stream chunk's types are `readonly`): parts
 * off the paths are shared between events.
 *
 * @since 0.7.0
 */

/**
 * Where a value that changes from event to event sits: keys and array indexes from the root.
 * A path whose value is a string or a number in an event is a token of that event's template.
 *
 * @since 0.7.0
 * @category models
 */
export type Path = ReadonlyArray<string | number>

/**
 * Parses events; keeps the templates it learned. Synchronous and shareable between streams.
 *
 * @since 0.7.0
 * @category models
 */
export type Parser = (text: string) => unknown

interface Template {
  /** The text around the tokens: `segments[0]`, token 0, `segments[1]`, …, the last segment. */
  readonly segments: ReadonlyArray<string>
  /** For each token, in the order of the text: whether it is a number (else a string). */
  readonly numbers: ReadonlyArray<boolean>
  /** The containers on the tokens' paths in the template's value, each after its parent (root first). */
  readonly nodes: ReadonlyArray<Container>
  /** For each node: its depth (the root's is 0). */
  readonly depths: ReadonlyArray<number>
  /** For each node but the root: its parent's index in `nodes` and its key there. */
  readonly parents: ReadonlyArray<number>
  readonly keys: ReadonlyArray<string | number>
  /** For each token, in the order of the text: the index of its container and its key there. */
  readonly tokenNodes: ReadonlyArray<number>
  readonly tokenKeys: ReadonlyArray<string | number>
  /**
   * For each token: its text and value in the last event matched, and once the same text came
   * twice in a row, that text with the segment after it, compared in one step (an id, a model,
   * a timestamp repeat through a stream; the text of a chunk does not).
   */
  readonly lastText: Array<string>
  readonly lastValue: Array<string | number>
  readonly repeated: Array<string | undefined>
  /** The values of the event being matched (parsing is synchronous: one at a time). */
  readonly values: Array<string | number>
}

type Container = Record<string | number, unknown>

interface Token {
  readonly path: Path
  readonly number: boolean
  readonly start: number
  readonly end: number
}

// JSON tokens at `lastIndex` (sticky), validated as JSON.parse would: a string with no raw
// control character and only JSON's escapes; a number in JSON's grammar.
const stringToken = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y
const numberToken = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y

/** How many templates a parser keeps (OpenAI's chunks: the role, text, finish and usage shapes). */
const capacity = 6

// Learning costs a second parse. Events whose shapes never repeat (each has another field that
// changes) stop the learning after this many templates in a row that matched nothing; from then
// on one event in `retryEvery` parsed in full is learned, so that a new shape is found in time.
const fruitlessLimit = 4
const retryEvery = 64

/**
 * A parser whose events change at `paths`.
 *
 * @since 0.7.0
 * @category constructors
 */
export const make = (paths: ReadonlyArray<Path>): Parser => {
  // Most recently matched first (a match moves its template one place up).
  const templates: Array<Template> = []
  // The last template learned, and how many were learned in a row without it matching since.
  let newest: Template | undefined
  let fruitless = 0
  let skipped = 0
  return (text) => {
    for (let i = 0; i < templates.length; i++) {
      const t = templates[i]!
      const value = match(t, text)
      if (value === undefined) continue
      if (t === newest) fruitless = 0
      if (i > 0) {
        templates[i] = templates[i - 1]!
        templates[i - 1] = t
      }
      return value
    }
    const value: unknown = JSON.parse(text)
    if (value !== null && typeof value === "object" && (fruitless < fruitlessLimit || ++skipped >= retryEvery)) {
      skipped = 0
      const learned = learn(paths, value, text)
      if (learned !== undefined) {
        fruitless++
        if (learned !== null) {
          newest = learned
          if (templates.length === capacity) templates.pop()
          templates.push(learned)
        }
      }
    }
    return value
  }
}

// Equal texts compared as `text.slice(…) === segment`: V8 compares the two with one memory
// compare, where `startsWith` goes a character at a time through a generic string access
// (~13,000 instructions an event here) and `indexOf` searches.
const match = (template: Template, text: string): unknown => {
  const segments = template.segments
  const first = segments[0]!
  let at = first.length
  if (text.slice(0, at) !== first) return undefined
  const values = template.values
  for (let i = 0; i < values.length; i++) {
    const repeated = template.repeated[i]
    if (repeated !== undefined && text.slice(at, at + repeated.length) === repeated) {
      values[i] = template.lastValue[i]!
      at += repeated.length
      continue
    }
    let end: number
    let value: string | number
    if (template.numbers[i]) {
      numberToken.lastIndex = at
      if (!numberToken.test(text)) return undefined
      end = numberToken.lastIndex
      value = Number(text.slice(at, end))
    } else {
      if (text.charCodeAt(at) !== 34) return undefined
      end = text.indexOf("\"", at + 1) + 1
      if (end === 0) return undefined
      const raw = text.slice(at + 1, end - 1)
      if (raw.indexOf("\\") === -1) {
        for (let c = 0; c < raw.length; c++) {
          if (raw.charCodeAt(c) < 0x20) return undefined
        }
        // V8 makes a slice of 13 characters or more a view of the text it was cut from: a value a
        // policy keeps (a chunk's id, for the stream's envelope) would keep the socket's read.
        value = raw.length < 13 ? raw : JSON.parse(text.slice(at, end)) as string
      } else {
        stringToken.lastIndex = at
        if (!stringToken.test(text)) return undefined
        end = stringToken.lastIndex
        value = JSON.parse(text.slice(at, end)) as string
      }
    }
    const segment = segments[i + 1]!
    if (text.slice(end, end + segment.length) !== segment) return undefined
    // A token followed by the same segment is the same token: its end is where its text ends.
    const token = text.slice(at, end)
    if (token === template.lastText[i]) template.repeated[i] = own(token + segment)
    else {
      // A slice: it keeps the text it was cut from, the one event's (bounded: a slot each).
      template.lastText[i] = token
      template.lastValue[i] = value
      template.repeated[i] = undefined
    }
    values[i] = value
    at = end + segment.length
  }
  if (at !== text.length) return undefined
  return build(template)
}

/** The template's value with `values` in place: the containers on the paths copied, once each. */
const build = (template: Template): unknown => {
  const nodes = template.nodes
  const copies: Array<Container> = [copy(nodes[0]!, 0)]
  for (let i = 1; i < nodes.length; i++) {
    const c = copy(nodes[i]!, template.depths[i]!)
    copies[template.parents[i]!]![template.keys[i]!] = c
    copies.push(c)
  }
  const tokenNodes = template.tokenNodes
  const values = template.values
  for (let j = 0; j < tokenNodes.length; j++) copies[tokenNodes[j]!]![template.tokenKeys[j]!] = values[j]
  return copies[0]
}

// One spread per depth: V8 copies an object fast at a spread that has seen a few shapes, and
// slowly (a property at a time) at one that has seen many; the shapes of one depth are few (an
// OpenAI chunk, its choice, its delta), of all depths together they are not.
const copy = (container: Container, depth: number): Container => {
  if (Array.isArray(container)) return container.slice() as unknown as Container
  switch (depth) {
    case 0:
      return { ...container }
    case 1:
      return { ...container }
    case 2:
      return { ...container }
    case 3:
      return { ...container }
    default:
      return { ...container }
  }
}

const valueAt = (value: unknown, path: Path): unknown => {
  let node = value
  for (const key of path) {
    if (node === null || typeof node !== "object") return undefined
    node = (node as Container)[key]
  }
  return node
}

const sentinel = (i: number) => `\u0000bw-template-${i}`

/** The tokens of the paths' values in `text` (parsed into `value`), in the order of the text. */
const locate = (paths: ReadonlyArray<Path>, value: unknown, text: string): Array<Token> | undefined => {
  const tokens: Array<Token> = []
  for (const path of paths) {
    const expected = valueAt(value, path)
    const key = path[path.length - 1]
    const number = typeof expected === "number"
    if ((!number && typeof expected !== "string") || typeof key !== "string") continue
    const token = number ? numberToken : stringToken
    // The token after the last key of the path whose value is the path's; which of them it is,
    // if the key occurs more than once, the check in `learn` settles.
    const needle = `${JSON.stringify(key)}:`
    for (let from = text.indexOf(needle); from !== -1; from = text.indexOf(needle, from + 1)) {
      const start = from + needle.length
      token.lastIndex = start
      if (!token.test(text)) continue
      const end = token.lastIndex
      if (JSON.parse(text.slice(start, end)) !== expected) continue
      tokens.push({ path, number, start, end })
      break
    }
  }
  if (tokens.length === 0) return undefined
  tokens.sort((a, b) => a.start - b.start)
  for (let i = 1; i < tokens.length; i++) {
    if (tokens[i]!.start < tokens[i - 1]!.end) return undefined
  }
  return tokens
}

/**
 * The template of `text` (parsed into `value`); `null` when the check of its tokens failed (a
 * second parse spent for nothing), `undefined` when no path has a value to change (nothing spent).
 */
const learn = (paths: ReadonlyArray<Path>, value: object, text: string): Template | null | undefined => {
  const tokens = locate(paths, value, text)
  if (tokens === undefined) return undefined
  // The segments as strings of their own, not slices of `text`: a slice would keep the whole
  // text it was cut from (and that text, the socket read it was cut from) for as long as the
  // template lives.
  const segments: Array<string> = [own(text.slice(0, tokens[0]!.start))]
  let probe = segments[0]!
  for (let i = 0; i < tokens.length; i++) {
    const segment = own(text.slice(tokens[i]!.end, i + 1 < tokens.length ? tokens[i + 1]!.start : text.length))
    segments.push(segment)
    probe += JSON.stringify(sentinel(i)) + segment
  }
  // The proof that the tokens are the paths' values: with each replaced by a sentinel string,
  // the text parses with each sentinel at its path. Replacing one token by another keeps every
  // other value as it was, so any values in those places give the template's value with them.
  let check: unknown
  try {
    check = JSON.parse(probe)
  } catch {
    return null
  }
  for (let i = 0; i < tokens.length; i++) {
    if (valueAt(check, tokens[i]!.path) !== sentinel(i)) return null
  }
  // The containers on the paths, each once, parents first.
  const nodes: Array<Container> = [value as Container]
  const depths: Array<number> = [0]
  const parents: Array<number> = [-1]
  const keys: Array<string | number> = [""]
  const tokenNodes: Array<number> = []
  const tokenKeys: Array<string | number> = []
  for (const { path } of tokens) {
    let index = 0
    for (let d = 0; d < path.length - 1; d++) {
      const child = nodes[index]![path[d]!] as Container
      let found = nodes.indexOf(child)
      if (found === -1) {
        found = nodes.push(child) - 1
        depths.push(d + 1)
        parents.push(index)
        keys.push(path[d]!)
      }
      index = found
    }
    tokenNodes.push(index)
    tokenKeys.push(path[path.length - 1]!)
  }
  return {
    segments,
    numbers: tokens.map((t) => t.number),
    nodes,
    depths,
    parents,
    keys,
    tokenNodes,
    tokenKeys,
    lastText: tokens.map(() => ""),
    lastValue: tokens.map(() => ""),
    repeated: tokens.map(() => undefined),
    values: tokens.map(() => "")
  }
}

/** A copy of `s` that is a string of its own (V8 gives `slice` and `+` results that point into their sources). */
const own = (s: string): string => JSON.parse(JSON.stringify(s)) as string
