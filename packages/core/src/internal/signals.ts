import type { Signal } from "../RequestContext.js"

/**
 * The signal a time limit aborts a call with. A Node `AbortController` is an `EventTarget`
 * underneath, costly to make and to listen to (BENCHMARKS.md); a call makes one or two per
 * attempt, so this plain one is used instead. It implements what the context's `Signal` asks:
 * the `abort` event fires once, listeners added after it do not run, as with `AbortSignal`.
 */
export class Abort implements Signal {
  aborted = false
  reason: unknown = undefined
  private listeners: Array<() => void> | undefined = undefined

  addEventListener(_type: "abort", listener: () => void): void {
    if (this.aborted) return
    if (this.listeners === undefined) this.listeners = [listener]
    else this.listeners.push(listener)
  }

  removeEventListener(_type: "abort", listener: () => void): void {
    const listeners = this.listeners
    if (listeners === undefined) return
    const i = listeners.indexOf(listener)
    if (i !== -1) listeners.splice(i, 1)
  }

  abort(reason: unknown): void {
    if (this.aborted) return
    this.aborted = true
    this.reason = reason
    const listeners = this.listeners
    this.listeners = undefined
    if (listeners !== undefined) for (const listener of listeners) listener()
  }
}

/** Makes `target` abort (with the reason) when `source` does; returns what stops following it. */
export const follow = (source: Signal | undefined, target: Abort): () => void => {
  if (source === undefined) return noop
  if (source.aborted) {
    target.abort(source.reason)
    return noop
  }
  const onAbort = () => target.abort(source.reason)
  source.addEventListener("abort", onAbort, { once: true })
  return () => source.removeEventListener("abort", onAbort)
}

const noop = () => {}
