/**
 * A journaled stream's frames, oldest first, kept compact: the frames of one append (the events
 * of one upstream read) are joined into one flat string (or kept as the bytes the client was
 * sent, when the host gives them), and a frame is where it starts and ends in it. A finished
 * stream is kept for minutes, and the collector copies and traces what it keeps: a frame as the
 * host built it is a tree of five to seven strings (prefix, id, data, suffix, the
 * joins) that also holds on to the whole upstream read its data was sliced from, so fifty events
 * made some three hundred objects to promote, where this keeps one string. A lone frame (a slow
 * stream: one event per read) went from ~425 to ~230 bytes kept.
 */
export class FrameLog {
  // Three slots per frame: its text or bytes (shared by the frames of one append), start, end
  // (in characters); the oldest kept frame's begin at `head` (dropping from the front moves it,
  // see `shift`).
  private parts: Array<string | Uint8Array | number | undefined> = []
  private head = 0

  /** How many frames are kept. */
  get length(): number {
    return (this.parts.length - this.head) / 3
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
    const parts = this.parts
    const asBytes = bytes !== undefined && from === 0
    // One character more than the frames: `join` hands a lone string back as it is (a tree), and
    // joining it with an empty one gives a tree again; with it, even one frame becomes a flat
    // string. A frame's slice of the text is made when it is read (a replay), not here.
    const held = asBytes ? bytes : frames.slice(from).concat("\n").join("")
    const first = asBytes ? at : 0
    let start = first
    for (let i = from; i < frames.length; i++) {
      const end = start + frames[i]!.length
      parts.push(held, start, end)
      start = end
    }
    return start - first
  }

  /** The frame at index `i` (0: the oldest kept). */
  at(i: number): string {
    const parts = this.parts
    const slot = this.head + 3 * i
    const held = parts[slot] as string | Uint8Array
    const start = parts[slot + 1] as number
    const end = parts[slot + 2] as number
    return (typeof held === "string" ? held : decoded(held)).slice(start, end)
  }

  /**
   * Drops the oldest frame; returns its length. The slots are cleared, and the array rebuilt
   * once half of it is cleared slots: a stream at its event bound drops one frame per append.
   */
  shift(): number {
    const parts = this.parts
    const head = this.head
    const length = (parts[head + 2] as number) - (parts[head + 1] as number)
    parts[head] = undefined
    this.head = head + 3
    if (this.head * 2 > parts.length) {
      this.parts = parts.slice(this.head)
      this.head = 0
    }
    return length
  }
}

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
