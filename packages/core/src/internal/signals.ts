/**
 * `AbortSignal.any` for the hot path. On Node 20 it costs ~27 µs a call (it tracks its sources
 * through weak references); a controller that follows its sources with one-shot listeners costs
 * a fraction of that, for the same behaviour: it aborts, with the reason, when the first of them
 * does.
 */

/** Makes `controller` abort (with the reason) when `source` does; returns what stops following it. */
export const follow = (source: AbortSignal | undefined, controller: AbortController): () => void => {
  if (source === undefined) return noop
  if (source.aborted) {
    controller.abort(source.reason)
    return noop
  }
  const onAbort = () => controller.abort(source.reason)
  source.addEventListener("abort", onAbort, { once: true })
  return () => source.removeEventListener("abort", onAbort)
}

/** One signal that aborts when `first` or any of `more` does: `first` itself when it is alone. */
export const anyOf = (first: AbortSignal, more: ReadonlyArray<AbortSignal | undefined>): AbortSignal => {
  if (more.every((s) => s === undefined)) return first
  const controller = new AbortController()
  follow(first, controller)
  for (const s of more) follow(s, controller)
  return controller.signal
}

const noop = () => {}
