/**
 * The seam between the text already delivered and a continuation. Decided once per seam, on
 * decoded text (never bytes), from the first characters of the continuation held back.
 */

export type Decision =
  | { readonly _tag: "Wait" }
  | { readonly _tag: "Restarted" }
  | { readonly _tag: "Text"; readonly text: string }

const WAIT: Decision = { _tag: "Wait" }
const RESTARTED: Decision = { _tag: "Restarted" }

/** Characters of the delivered text's start that, repeated at the continuation's start, mean "it started over". */
const RESTART_PROBE = 16

/**
 * Decides the seam given the delivered text and what the continuation produced so far (`held`).
 * `final` says the continuation ended, so no more text will come.
 *
 * - It started over (its start repeats the delivered text's first characters): when it repeats
 *   the whole delivered text, the rest is the continuation ("regenerate and verify"); when it
 *   diverges, it is rejected.
 * - An exact continuation (the adapter used an assistant prefill) is taken as is.
 * - Otherwise, the longest suffix of the delivered text (at least `minOverlap` characters) that
 *   the continuation repeats is dropped; shorter coincidences are kept, as continuing text.
 */
export const spliceSeam = (
  delivered: string,
  held: string,
  settings: { readonly holdBack: number; readonly minOverlap: number },
  final: boolean,
  exact = false
): Decision => {
  // A prefill continues the text itself: nothing to trim, nothing to hold.
  if (exact) return { _tag: "Text", text: held }
  const probe = delivered.slice(0, Math.min(RESTART_PROBE, delivered.length))
  if (probe.length >= settings.minOverlap) {
    if (held.length < probe.length && delivered.startsWith(held) && !final) return WAIT
    if (held.startsWith(probe)) {
      if (held.length <= delivered.length && !final) return WAIT
      return held.startsWith(delivered) ? { _tag: "Text", text: held.slice(delivered.length) } : RESTARTED
    }
  }
  if (held.length < settings.holdBack && !final) return WAIT
  const max = Math.min(delivered.length, held.length)
  for (let k = max; k >= settings.minOverlap; k--) {
    if (delivered.endsWith(held.slice(0, k))) return { _tag: "Text", text: held.slice(k) }
  }
  return { _tag: "Text", text: held }
}
