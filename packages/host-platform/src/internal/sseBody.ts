/**
 * A streamed response's body as an `effect/Stream`, fed from the push path: the writer appends
 * encoded SSE frames with a plain call, the server pulls them as one `Uint8Array` per pull. Past
 * a high-water mark the producer is paused (`whenFull`) and resumed by the next pull, so a slow
 * client holds the upstream back as the lean host's socket does. Once the consumer is gone, writes
 * are dropped and never pause the producer (a detached generation runs on into its journal).
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"

/** Buffered text (UTF-16 code units) past which the producer is asked to pause. */
const highWaterMark = 64 * 1024

export interface SseBody {
  /** Appends frames; `false` when the buffer is past its high-water mark. */
  readonly write: (frames: string) => boolean
  /** Keeps the producer's `resume` until the buffer is taken (at once when it already was). */
  readonly whenFull: (resume: () => void) => void
  /** Appends the last frames and ends the body once they are taken. */
  readonly end: (last: string) => void
  /** Nobody will read the body: what it holds is dropped, writes are from now on, and a paused producer resumes. */
  readonly abandon: () => void
  /** The body; `cancel` runs when it ends or its consumer goes away (writes are dropped from then on). */
  readonly stream: Stream.Stream<Uint8Array>
}

export const make = (cancel: () => void): SseBody => {
  const encoder = new TextEncoder()
  let buffered = ""
  let ended = false
  let gone = false
  let paused: (() => void) | undefined
  let waiting: ((effect: Effect.Effect<Uint8Array, Option.Option<never>>) => void) | undefined
  const take = (): Effect.Effect<Uint8Array, Option.Option<never>> | undefined => {
    if (buffered !== "") {
      const text = buffered
      buffered = ""
      const resume = paused
      paused = undefined
      if (resume !== undefined) resume()
      return Effect.succeed(encoder.encode(text))
    }
    return ended ? Effect.fail(Option.none()) : undefined
  }
  const wake = () => {
    if (waiting === undefined) return
    const next = take()
    if (next === undefined) return
    const resume = waiting
    waiting = undefined
    resume(next)
  }
  const pull = Effect.async<Uint8Array, Option.Option<never>>((resume) => {
    const next = take()
    if (next !== undefined) return resume(next)
    waiting = resume
    return Effect.sync(() => {
      waiting = undefined
    })
  })
  const abandon = () => {
    gone = true
    buffered = ""
    const resume = paused
    paused = undefined
    if (resume !== undefined) resume()
  }
  return {
    write: (frames) => {
      if (ended || gone) return true
      buffered += frames
      wake()
      return buffered.length < highWaterMark
    },
    whenFull: (resume) => {
      if (buffered === "" || gone) resume()
      else paused = resume
    },
    end: (last) => {
      if (ended) return
      buffered += last
      ended = true
      wake()
    },
    abandon,
    stream: Stream.ensuring(
      Stream.repeatEffectOption(pull),
      Effect.sync(() => {
        abandon()
        cancel()
      })
    )
  }
}
