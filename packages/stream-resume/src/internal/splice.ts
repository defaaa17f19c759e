/**
 * The seam between the text already delivered and a continuation, decided on decoded strings
 * (never bytes) from the continuation's first characters, held back until the decision.
 */

export interface SpliceSettings {
  /** Characters of a continuation held before the seam is decided. */
  readonly holdBack: number
  /** The shortest repeat of the delivered text's end that counts as an overlap. */
  readonly minOverlap: number
  /** How far back a continuation that repeats older delivered text may be verified. */
  readonly verifyLimit: number
}

export type Decision =
  /** Not decided yet: hold what arrived. */
  | { readonly _tag: "Hold" }
  /** Glue the continuation on after dropping its first `drop` characters. */
  | { readonly _tag: "Accept"; readonly drop: number; readonly kind: "overlap" | "verified" | "boundary" }
  /** Not a continuation of the delivered text: do not glue it on. */
  | { readonly _tag: "Reject"; readonly reason: string }

const HOLD: Decision = { _tag: "Hold" }

const isLowSurrogate = (code: number): boolean => code >= 0xdc00 && code <= 0xdfff

/**
 * The longest `k` such that the delivered text ends with the first `k` characters of `held`,
 * never cutting `held` between the halves of a surrogate pair.
 */
export const longestOverlap = (delivered: string, held: string): number => {
  const from = Math.max(0, delivered.length - held.length)
  for (let p = from; p < delivered.length; p++) {
    const k = delivered.length - p
    if (k < held.length && isLowSurrogate(held.charCodeAt(k))) continue
    if (held.startsWith(delivered.slice(p))) return k
  }
  return 0
}

/** The shortest repeat dropped after an assistant-prefill continuation. */
export const EXACT_MIN_OVERLAP = 16

const commonPrefix = (a: string, b: string): number => {
  const n = Math.min(a.length, b.length)
  let i = 0
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++
  return i
}

/**
 * Decides a seam. `held` is everything the continuation produced so far; `final` says no more
 * text will come (it finished, or a tool call began).
 *
 * 0. For an exact continuation (the adapter used an assistant prefill) the overlap threshold
 *    is `EXACT_MIN_OVERLAP`: a prefill does not repeat, so short repeats are the answer's own.
 * 1. Until `holdBack` characters arrived (or the end), hold.
 * 2. A **credible overlap** is a repeat of the delivered text's end by the continuation's start
 *    of at least `minOverlap` characters, or of the whole delivered text (a regeneration that
 *    verified every delivered character): it is dropped. A shorter repeat is coincidence (a
 *    true continuation may begin with the letters the delivered text ends with) and is kept.
 *    Repeated trailing whitespace is always dropped: a prefill is sent right-trimmed, so its
 *    continuation starts with the whitespace that was trimmed.
 * 3. A continuation whose held text lies inside the delivered text is repeating older text (a
 *    long overlap, or a restart from the beginning): it is held until it reaches the end of the
 *    delivered text (then step 2 drops the repeat), if that end is at most `verifyLimit`
 *    characters after where the repeat began; otherwise it is rejected. (A continuation that
 *    ends before reaching that end is short text that happens to occur earlier: kept.)
 * 4. A continuation that begins like the delivered text began (`2 × minOverlap` characters) but
 *    diverges is a rephrased restart: rejected.
 * 5. Anything else starts at a **clean boundary** — right where the delivered text ended — and
 *    is glued on as it is.
 */
export const decide = (delivered: string, held: string, final: boolean, settings: SpliceSettings, exact = false): Decision => {
  // A prefill continues the delivered text itself, so a repeat at the seam is far more likely
  // to be the answer's own ("retries retries") than the model's: only a long one is dropped.
  if (exact && settings.minOverlap < EXACT_MIN_OVERLAP) return decide(delivered, held, final, { ...settings, minOverlap: EXACT_MIN_OVERLAP })
  if (!final && held.length < settings.holdBack) return HOLD
  if (held.length === 0 || delivered.length === 0) return { _tag: "Accept", drop: 0, kind: "boundary" }
  const k = longestOverlap(delivered, held)
  if (k === delivered.length) return { _tag: "Accept", drop: k, kind: "verified" }
  // Whitespace the delivered text ends with, generated again: what a continuation of a
  // right-trimmed assistant prefill does.
  if (k > 0 && delivered.slice(-k).trim().length === 0) return { _tag: "Accept", drop: k, kind: "overlap" }
  // A continuation that is nothing but the delivered text's last words and then the end is an
  // answer ending on a repeated phrase more often than a model that repeated itself and stopped.
  if (k >= settings.minOverlap && !(final && k === held.length)) return { _tag: "Accept", drop: k, kind: "overlap" }
  // The longest repeat was too short to count, but it begins with the trailing whitespace a
  // right-trimmed prefill regenerates ("…and " then " and more"): drop just that whitespace.
  const ws = delivered.length - delivered.trimEnd().length
  if (ws > 0 && held.startsWith(delivered.slice(-ws))) return { _tag: "Accept", drop: ws, kind: "overlap" }
  if (held.length >= settings.minOverlap) {
    const p = delivered.lastIndexOf(held)
    if (p >= 0) {
      // A continuation that ends this soon is short text that happens to occur earlier: kept.
      if (final) return { _tag: "Accept", drop: 0, kind: "boundary" }
      if (delivered.length - p <= settings.verifyLimit) return HOLD
      return { _tag: "Reject", reason: "the continuation repeats earlier text instead of continuing" }
    }
  }
  if (commonPrefix(delivered, held) >= 2 * settings.minOverlap) {
    return { _tag: "Reject", reason: "the continuation restarts the answer instead of continuing it" }
  }
  return { _tag: "Accept", drop: 0, kind: "boundary" }
}

/**
 * Whether a stop sequence spans the seam: begins in the delivered text and ends in the new
 * text. The upstream of the continuation cannot see it (it only checks what it generates), so
 * stream-resume does, and ends the stream there with `finish_reason: "stop"`.
 */
export const stopAcrossSeam = (delivered: string, next: string, stops: ReadonlyArray<string>): boolean => {
  for (const stop of stops) {
    for (let j = 1; j < stop.length; j++) {
      if (delivered.endsWith(stop.slice(0, j)) && next.startsWith(stop.slice(j))) return true
    }
  }
  return false
}
