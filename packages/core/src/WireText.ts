/**
 * The JSON text an upstream sent for an object it was parsed into, held for a short while, so
 * that a host that sends the object on unchanged sends that text instead of encoding the object
 * again. Re-encoding a stream chunk (`JSON.stringify`) costs about as much as parsing it did, and
 * most chunks cross every policy untouched.
 *
 * Tied to the object's identity: chunks and completions are immutable (their types are
 * `readonly`), and a policy that changes one makes a new object (a spread copy, say), which has
 * no text and is encoded. A parsed object must not be changed in place: its text would be stale.
 * Nothing is added to the object.
 *
 * @since 0.5.0
 */

// Where the texts are kept: the last `size` attached, in a ring, cleared as each is taken. A
// chunk is attached when its event is parsed and looked up when the host writes it, in the same
// synchronous pass through the policies, in the same order, so a lookup almost always finds its
// entry at the cursor. Anything else (a chunk held back for longer, an object never attached)
// costs one scan of the ring and is encoded: slower, never wrong.
//
// Why not a property on the object: an enumerable one is seen by `toEqual`, `console.log` and a
// spread copy, and a non-enumerable one (`Object.defineProperty`) costs about half of the
// `JSON.stringify` it saves. Why not a `WeakMap`: its table grows between collections and cost as
// much (in process, 50 chunks of the bench's stream: 0.5 µs a chunk, against 1 µs for the
// encoding it saves). The ring costs a few stores.
const size = 128
const mask = size - 1
// An entry nobody takes (an answer an adapter translated, a chunk a policy replaced) stays until
// 128 later ones push it out; with texts over this not recorded (they are encoded instead), what
// the ring can hold on to stays small.
const maxText = 16 * 1024
const objects: Array<object | undefined> = new Array(size).fill(undefined)
const texts: Array<string | Uint8Array | undefined> = new Array(size).fill(undefined)
// The slot the next attach fills, and the slot after the last one taken.
let next = 0
let cursor = 0

/**
 * Records `text` as the JSON text of `value` (which `JSON.parse(text)` produced) and returns
 * `value`. A text with a line break is not recorded (an SSE `data:` line cannot carry it as is),
 * nor one over 16 KiB (see the ring's bound).
 *
 * @since 0.5.0
 * @category constructors
 */
export const attach = <A extends object>(value: A, text: string): A => {
  if (text.length <= maxText && text.indexOf("\n") === -1 && text.indexOf("\r") === -1) hold(value, text)
  return value
}

const hold = (value: object, held: string | Uint8Array): void => {
  objects[next] = value
  texts[next] = held
  next = (next + 1) & mask
}

/**
 * Records `bytes` as the UTF-8 JSON body `value` was parsed from (a non-streaming answer) and
 * returns `value`: a host that writes bytes sends them as they came (`encodeBody`), without
 * encoding the object again nor the text to UTF-8. Not over 16 KiB; pass a copy, not a view of a
 * socket's read (the ring may hold it a while).
 *
 * @since 0.6.0
 * @category constructors
 */
export const attachBytes = <A extends object>(value: A, bytes: Uint8Array): A => {
  if (bytes.length <= maxText) hold(value, bytes)
  return value
}

const release = (slot: number): string | Uint8Array | undefined => {
  const text = texts[slot]
  objects[slot] = undefined
  texts[slot] = undefined
  cursor = (slot + 1) & mask
  return text
}

const takeAny = (value: object): string | Uint8Array | undefined => {
  for (let slot = cursor, n = 0; n < size; slot = (slot + 1) & mask, n++) {
    if (objects[slot] === value) return release(slot)
  }
  return undefined
}

/**
 * The JSON text recorded for `value`, if it is still held; it is given out once. Bytes recorded
 * with `attachBytes` are let go and not given out (they may hold line breaks).
 *
 * @since 0.5.0
 * @category getters
 */
export const take = (value: object): string | undefined => {
  const held = takeAny(value)
  return typeof held === "string" ? held : undefined
}

/**
 * `value` as JSON: its recorded text when it is still held (taken, so given out once), else
 * `JSON.stringify(value)`.
 *
 * @since 0.5.0
 * @category encoding
 */
export const encode = (value: object): string => take(value) ?? JSON.stringify(value)

/**
 * `value` as a JSON body: the bytes or text recorded for it when still held (taken), else
 * `JSON.stringify(value)`. For a whole response body, where line breaks do not matter.
 *
 * @since 0.6.0
 * @category encoding
 */
export const encodeBody = (value: object): string | Uint8Array => takeAny(value) ?? JSON.stringify(value)
