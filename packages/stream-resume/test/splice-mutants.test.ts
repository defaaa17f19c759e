/**
 * Seam rules that `npm run mutation` found unchecked (docs/mutation.md), on the pure functions.
 */
import { describe, expect, it } from "@effect/vitest"
import { decide, longestOverlap, stopAcrossSeam } from "../src/internal/splice.js"

const settings = { holdBack: 4, minOverlap: 4, verifyLimit: 40 }

describe("splice rules", () => {
  it("a stop sequence spans the seam only when it begins in the delivered text and ends in the new text", () => {
    expect(stopAcrossSeam("the END", "more", ["END"])).toBe(false) // wholly delivered already
    expect(stopAcrossSeam("the E", "ND more", ["END"])).toBe(true)
    expect(stopAcrossSeam("the E", "xyz", ["END"])).toBe(false) // begins, does not end
    expect(stopAcrossSeam("the x", "ND", ["END"])).toBe(false) // ends, did not begin
  })

  it("nothing delivered yet: the continuation is glued on at a clean boundary", () => {
    expect(decide("", "hello world", false, settings)).toEqual({ _tag: "Accept", drop: 0, kind: "boundary" })
    expect(decide("hello", "", true, settings)).toEqual({ _tag: "Accept", drop: 0, kind: "boundary" })
  })

  it("holds until exactly holdBack characters arrived", () => {
    expect(decide("hello there", "abc", false, settings)).toEqual({ _tag: "Hold" })
    expect(decide("hello there", "abcd", false, settings)._tag).toBe("Accept")
  })

  it("the overlap never splits a surrogate pair of the continuation", () => {
    // The delivered text ends with a lone high surrogate (a cut inside "😀"); the continuation
    // repeats it with its low half: a 1-character overlap would cut the pair.
    const delivered = "smile \ud83d"
    const held = "\ud83d\ude00 and more"
    expect(longestOverlap(delivered, held)).toBe(0)
    expect(longestOverlap("abcd", "cdef")).toBe(2)
  })

  it("a continuation repeating earlier text is held while its end is within verifyLimit, rejected beyond it, kept when it ends there", () => {
    const delivered = `${"x".repeat(50)}repeat me here and then some more words`
    const held = "repeat me"
    const start = delivered.lastIndexOf(held)
    expect(decide(delivered, held, false, { ...settings, verifyLimit: delivered.length - start })).toEqual({ _tag: "Hold" })
    expect(decide(delivered, held, false, { ...settings, verifyLimit: delivered.length - start - 1 })).toMatchObject({ _tag: "Reject", reason: expect.stringMatching(/repeats earlier text/) })
    expect(decide(delivered, held, true, settings)).toEqual({ _tag: "Accept", drop: 0, kind: "boundary" })
  })

  it("a rephrased restart is rejected with its reason", () => {
    const delivered = "The answer to your question is forty-two."
    expect(decide(delivered, "The answer to your question, in short: 42", false, settings)).toMatchObject({
      _tag: "Reject",
      reason: expect.stringMatching(/restarts the answer/)
    })
  })

  it("a repeat of trailing whitespace is dropped even when the continuation does not repeat all of it", () => {
    expect(decide("and then  ", " more words", false, settings)).toEqual({ _tag: "Accept", drop: 1, kind: "overlap" })
  })

  it("an exact (prefill) continuation drops only repeats of at least 16 characters, whatever minOverlap asks", () => {
    const delivered = "we said hello"
    const held = "hello again and more to come"
    expect(decide(delivered, held, false, settings)).toEqual({ _tag: "Accept", drop: 5, kind: "overlap" })
    expect(decide(delivered, held, false, settings, true)).toEqual({ _tag: "Accept", drop: 0, kind: "boundary" })
    // A larger minOverlap is kept: the exact rule only raises the threshold.
    const long = "a repeated phrase!" // 18 characters
    expect(decide(`so: ${long}`, `${long} and on it goes`, false, { ...settings, minOverlap: 20 }, true)).toEqual({ _tag: "Accept", drop: 0, kind: "boundary" })
    expect(decide(`so: ${long}`, `${long} and on it goes`, false, { ...settings, minOverlap: 16 }, true)).toEqual({ _tag: "Accept", drop: 18, kind: "overlap" })
  })

  it("a repeat at the seam is dropped while more follows it, and kept when the answer ends on it", () => {
    // The continuation repeats the delivered text's last words, then goes on: the repeat is the model's.
    expect(decide("we tested the gateway", "the gateway and it held", false, settings)).toEqual({ _tag: "Accept", drop: "the gateway".length, kind: "overlap" })
    // Nothing but those words, then the end: an answer ending on a repeated phrase keeps them.
    expect(decide("we tested the gateway", "the gateway", true, settings)).toEqual({ _tag: "Accept", drop: 0, kind: "boundary" })
  })
})
