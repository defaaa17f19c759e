/**
 * A journaled stream's frames, oldest first, kept compact: the frames of one append (the events
 * of one upstream read) are joined into one flat string (or kept as the bytes the client was
 * sent, when the host gives them), and a frame is where it starts and ends in it. A finished
 * stream is kept for minutes, and the collector copies and traces what it keeps: a frame as the
 * host built it is a tree of five to seven strings (prefix, id, data, suffix, the
 * joins) that also holds on to the whole upstream read its data was sliced from, so fifty events
 * made some three hundred objects to promote, where this keeps one string. A lone frame (a slow
 * stream: one event per read) went from ~425 to ~230 bytes kept.
 *
 * The frames' lengths are kept per append too, packed: a number for a lone frame, else a string
 * whose character codes are the lengths (one object without pointers, that the collector copies
 * in one step). A start and an end per frame were three array slots per frame, and that array,
 * kept for minutes by thousands of finished streams, cost ~40,000 instructions of collection
 * per back-to-back stream (`bench/journal-memory.mjs` under callgrind), half of the memory
 * journal's cost.
 */
export class FrameLog {
  // Three slots per append: its text or bytes, where its oldest kept frame starts (in
  // characters), and its frames' lengths (`Lengths`). The oldest append kept is at `head`, with
  // its first `dropped` frames gone (dropping from the front, see `shift`).
  private parts: Array<string | Uint8Array | Lengths | undefined> = []
  private head = 0
  private dropped = 0
  private count = 0
  // Where the last frame read was (a replay reads frames in order): its index, append (slot),
  // index in that append, and start. `atIndex` -1: none (reset when a frame is dropped). Fields,
  // not an object: a finished stream's log is kept for minutes, and each object is one more for
  // the collector.
  private atIndex = -1
  private atSlot = 0
  private atWithin = 0
  private atStart = 0

  /** How many frames are kept. */
  get length(): number {
    return this.count
  }

  /**
   * Appends `frames` from index `from` on; returns their total length. `bytes`, when given, are
   * the UTF-8 encoding of the client's write, whose text is all of `frames` joined from character
   * `at` on: kept as they are, off the JavaScript heap, instead of a joined text (a back-to-back
   * stream's ~14 KB text was copied by each of two scavenges and traced for minutes;
   * BENCHMARKS.md).
   */
  append(frames: ReadonlyArray<string>, from: number, bytes?: Uint8Array | undefined, at = 0): number {
    if (from >= frames.length) return 0
    const asBytes = bytes !== undefined && from === 0
    // One character more than the frames: `join` hands a lone string back as it is (a tree), and
    // joining it with an empty one gives a tree again; with it, even one frame becomes a flat
    // string. A frame's slice of the text is made when it is read (a replay), not here.
    const held = asBytes ? bytes : frames.slice(from).concat("\n").join("")
    const n = frames.length - from
    let total = 0
    let lengths: Lengths
    if (n === 1) lengths = total = frames[from]!.length
    else {
      const each = new Array<number>(n)
      let packable = n <= maxPacked
      for (let i = 0; i < n; i++) {
        const length = frames[from + i]!.length
        each[i] = length
        total += length
        if (length > 0xffff) packable = false
      }
      lengths = packable ? String.fromCharCode.apply(null, each) : each
    }
    this.parts.push(held, asBytes ? at : 0, lengths)
    this.count += n
    return total
  }

  /** The frame at index `i` (0: the oldest kept). */
  at(i: number): string {
    const parts = this.parts
    let index: number
    let slot: number
    let within: number
    let start: number
    if (this.atIndex !== -1 && this.atIndex <= i) {
      index = this.atIndex
      slot = this.atSlot
      within = this.atWithin
      start = this.atStart
    } else {
      index = 0
      slot = this.head
      within = this.dropped
      start = parts[slot + 1] as number
    }
    for (;;) {
      const lengths = parts[slot + 2] as Lengths
      const n = countOf(lengths)
      if (i - index < n - within) {
        // In this append: walk to it.
        for (; index < i; index++, within++) start += lengthOf(lengths, within)
        this.atIndex = index
        this.atSlot = slot
        this.atWithin = within
        this.atStart = start
        const held = parts[slot] as string | Uint8Array
        return (typeof held === "string" ? held : decoded(held)).slice(start, start + lengthOf(lengths, within))
      }
      index += n - within
      slot += 3
      within = 0
      start = parts[slot + 1] as number
    }
  }

  /**
   * Drops the oldest frame; returns its length. An append's slots are cleared once its last frame
   * is dropped, and the array rebuilt once half of it is cleared slots: a stream at its event
   * bound drops one frame per append.
   */
  shift(): number {
    const parts = this.parts
    const head = this.head
    const lengths = parts[head + 2] as Lengths
    const length = lengthOf(lengths, this.dropped)
    this.count--
    this.atIndex = -1
    if (++this.dropped < countOf(lengths)) {
      parts[head + 1] = (parts[head + 1] as number) + length
      return length
    }
    parts[head] = undefined
    parts[head + 2] = undefined
    this.dropped = 0
    this.head = head + 3
    if (this.head * 2 > parts.length) {
      this.parts = parts.slice(this.head)
      this.head = 0
    }
    return length
  }
}

/**
 * An append's frames' lengths: a number for one frame; else a string of their character codes
 * (each below 65,536; at most `maxPacked` of them, well inside `String.fromCharCode.apply`'s
 * argument limit), or, past either, the array of them.
 */
type Lengths = number | string | ReadonlyArray<number>
const maxPacked = 8192
const countOf = (lengths: Lengths): number => typeof lengths === "number" ? 1 : lengths.length
const lengthOf = (lengths: Lengths, i: number): number =>
  typeof lengths === "number" ? lengths : typeof lengths === "string" ? lengths.charCodeAt(i) : lengths[i]!

// A replay reads the frames of one append one after another: the bytes are decoded once for
// all of them (the last decoded is kept, one for the whole journal).
const decoder = new TextDecoder()
let lastBytes: Uint8Array | undefined
let lastText = ""
const decoded = (bytes: Uint8Array): string => {
  if (bytes !== lastBytes) {
    lastText = decoder.decode(bytes)
    lastBytes = bytes
  }
  return lastText
}
