/**
 * A response body written as fast as the client takes it, for tests of backpressure and size
 * caps: `frame` again and again until `total` bytes went out, waiting for `drain` whenever the
 * socket is full, so `progress` shows how much the client accepted and whether it was held back.
 *
 * @since 0.2.0
 */
import type { ServerResponse } from "node:http"

/**
 * What a flood did so far.
 *
 * @since 0.2.0
 * @category models
 */
export interface Progress {
  written: number
  /** Waiting for `drain`: the client is not reading. */
  blocked: boolean
  /** Every byte went out and the response ended. */
  finished: boolean
}

/**
 * Writes `frame` until `total` bytes went out, then ends the response with `last` (if given).
 *
 * @since 0.2.0
 * @category constructors
 */
export const write = (res: ServerResponse, frame: string | Buffer, total: number, progress: Progress, last?: string): void => {
  const bytes = typeof frame === "string" ? Buffer.from(frame) : frame
  const more = () => {
    while (progress.written < total && !res.destroyed) {
      progress.written += bytes.length
      if (!res.write(bytes)) {
        progress.blocked = true
        res.once("drain", () => {
          progress.blocked = false
          more()
        })
        return
      }
    }
    if (!res.destroyed) {
      progress.finished = true
      if (last === undefined) res.end()
      else res.end(last)
    }
  }
  more()
}
