/** One dispatched SSE event (the `Last-Event-ID` buffer as it stood when it was dispatched). */
export interface SseEvent {
  readonly id: string | undefined
  readonly data: string
}

/**
 * An incremental SSE parser (the WHATWG event-stream rules): lines end in CRLF, LF or CR; a
 * blank line dispatches; comments and unknown fields are ignored; `id` persists across events.
 * Dependency-free, for Node and browsers.
 */
export class SseParser {
  private buffer = ""
  private data: Array<string> = []
  private sawData = false
  private pendingCR = false
  /** The last event id seen (the id buffer). */
  lastEventId: string | undefined = undefined
  /** The last `retry:` value seen, in ms. */
  retryMs: number | undefined = undefined

  /** Feeds decoded text; returns the events it completed. */
  push(text: string): Array<SseEvent> {
    const out: Array<SseEvent> = []
    let input = text
    // A CR that ended the previous piece may be the first half of a CRLF.
    if (this.pendingCR) {
      this.pendingCR = false
      if (input.startsWith("\n")) input = input.slice(1)
    }
    let buffer = this.buffer + input
    let start = 0
    for (let i = 0; i < buffer.length; i++) {
      const c = buffer.charCodeAt(i)
      if (c !== 10 && c !== 13) continue
      this.line(buffer.slice(start, i), out)
      if (c === 13) {
        if (i + 1 === buffer.length) this.pendingCR = true
        else if (buffer.charCodeAt(i + 1) === 10) i++
      }
      start = i + 1
    }
    buffer = buffer.slice(start)
    this.buffer = buffer
    return out
  }

  private line(line: string, out: Array<SseEvent>) {
    if (line === "") {
      if (this.sawData) out.push({ id: this.lastEventId, data: this.data.join("\n") })
      this.data = []
      this.sawData = false
      return
    }
    if (line.charCodeAt(0) === 58) return // ":" comment
    const colon = line.indexOf(":")
    const field = colon === -1 ? line : line.slice(0, colon)
    let value = colon === -1 ? "" : line.slice(colon + 1)
    if (value.startsWith(" ")) value = value.slice(1)
    switch (field) {
      case "data":
        this.data.push(value)
        this.sawData = true
        return
      case "id":
        if (!value.includes("\0")) this.lastEventId = value
        return
      case "retry":
        if (/^\d+$/.test(value)) this.retryMs = Number(value)
        return
    }
  }
}
