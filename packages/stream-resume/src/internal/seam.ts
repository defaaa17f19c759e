/**
 * The seam of a continuation: its first characters are held back until `Splice.decide` says
 * where they join the text already delivered, and the overlap (a repeat of the delivered
 * text's end) is trimmed off. An attempt has one from the start of a continuation until the seam
 * is decided.
 */
import type { Continuation } from "@breakwater/core"
import * as Splice from "./splice.js"

/** Filled in by the adapter serving a continuation: the strategy it used. */
export type Applied = { strategy?: Continuation.Strategy | undefined }

export class Seam {
  private held = ""

  constructor(private readonly applied: Applied) {}

  hold(text: string): void {
    this.held += text
  }

  /** Decides the seam on what arrived; `final`: no more text will come before it must be. */
  decide(delivered: string, final: boolean, settings: Splice.SpliceSettings): Splice.Decision {
    // An assistant prefill continues the delivered text exactly: only long repeats are dropped.
    return Splice.decide(delivered, this.held, final, settings, this.applied.strategy === "assistant-prefill")
  }

  /** The held text without its first `drop` characters (the overlap), once the seam is accepted. */
  accept(drop: number): string {
    return this.held.slice(drop)
  }
}
