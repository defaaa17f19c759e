/**
 * Writes one SSE response: head frames, content chunks, tail and terminator, paced by the
 * behavior's delays and pings, optionally split inside multi-byte characters, and broken by its
 * mid-stream fault (`Cut`, `Stall`, `Malformed`, `ErrorEvent`, `NoTerminator`).
 */
import type { ServerResponse } from "node:http"
import type { Behavior } from "./behavior.js"
import type { Frames, Wire } from "./wire.js"

const sseHeaders = { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", connection: "keep-alive" }

/** Splits a frame in two inside its first multi-byte character (or in the middle). */
const splitInsideCharacter = (bytes: Buffer): [Buffer, Buffer] => {
  let at = -1
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i]! >= 0xc0) {
      at = i + 1
      break
    }
  }
  if (at < 0) at = bytes.length >> 1
  return [bytes.subarray(0, at), bytes.subarray(at)]
}

/**
 * Streams `frames` to `res`. `cut` is called just before the mock destroys the socket itself
 * (so the exchange is not taken for a client abort).
 */
export const writeStream = (
  wire: Wire,
  frames: Frames,
  behavior: Behavior,
  defaultGap: number,
  res: ServerResponse,
  cut: () => void
): void => {
  res.writeHead(200, behavior.headers === undefined ? sseHeaders : { ...sseHeaders, ...behavior.headers })
  const gap = behavior.chunkDelayMs ?? defaultGap
  const first = behavior.firstChunkDelayMs ?? gap
  const split = behavior.splitUtf8 === true
  const content = frames.content
  const fault = behavior.fault
  const midStream = fault !== undefined && "afterChunks" in fault ? fault : undefined
  let timer: ReturnType<typeof setTimeout> | undefined
  let ping: ReturnType<typeof setInterval> | undefined
  if ((behavior.pingEveryMs ?? 0) > 0) ping = setInterval(() => res.write(wire.ping), behavior.pingEveryMs)
  if (ping !== undefined || gap > 0 || first > 0 || split) {
    res.on("close", () => {
      if (timer !== undefined) clearTimeout(timer)
      if (ping !== undefined) clearInterval(ping)
    })
  }
  const finish = () => {
    if (ping !== undefined) clearInterval(ping)
    res.end()
  }
  const write = (frame: Buffer, then: () => void) => {
    if (res.destroyed) return
    if (split) {
      const [a, b] = splitInsideCharacter(frame)
      // The second half goes out a moment later, so the client reads the halves separately.
      res.write(a, () => {
        timer = setTimeout(() => {
          timer = undefined
          if (!res.destroyed) res.write(b, then)
        }, 1)
      })
    } else res.write(frame, then)
  }
  // One state machine per response: `stage` 0 head, 1 content, 2 tail, 3 done.
  let stage = 0
  let i = 0
  let sent = 0
  const step = (): void => {
    timer = undefined
    if (res.destroyed) return
    if (stage === 0) {
      if (i < frames.head.length) return write(frames.head[i++]!, step)
      stage = 1
      i = 0
      if (first > 0) {
        timer = setTimeout(step, first)
        return
      }
    }
    if (stage === 1) {
      if (midStream !== undefined && sent >= midStream.afterChunks) {
        switch (midStream._tag) {
          case "Cut":
            cut()
            res.socket?.destroy()
            return
          case "Stall":
            return
          case "Malformed":
            return write(wire.malformed, finish)
          case "ErrorEvent":
            return write(wire.errorEvent, finish)
        }
      }
      if (sent < content.length) {
        const frame = content[sent++]!
        if (gap > 0 && sent < content.length) return write(frame, delayed)
        return write(frame, step)
      }
      stage = 2
      i = 0
    }
    if (stage === 2) {
      if (i < frames.tail.length) return write(frames.tail[i++]!, step)
      stage = 3
      if (fault?._tag === "NoTerminator") return finish()
      return write(frames.terminator, finish)
    }
  }
  const delayed = () => {
    if (!res.destroyed) timer = setTimeout(step, gap)
  }
  step()
}
