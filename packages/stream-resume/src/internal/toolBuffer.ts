/**
 * Tool calls held back until they are whole (`toolStreaming: "buffer"`): the deltas of one call
 * are assembled here and released at once — when the next call begins or the choice finishes —
 * so a break inside a call never shows the client half of it, and the call is regenerated.
 * One per attempt.
 */
import type { ChatCompletion } from "@breakwater/core"
import type { PendingCall } from "./envelope.js"

export class ToolBuffer {
  private call: PendingCall | undefined = undefined

  /** Adds a delta; returns the call before it when this delta begins the next one (it is whole). */
  add(d: ChatCompletion.ToolCallDelta): PendingCall | undefined {
    let call = this.call
    let whole: PendingCall | undefined
    if (call !== undefined && call.index !== d.index) {
      whole = call
      call = undefined
    }
    if (call === undefined) {
      call = { index: d.index, id: d.id, name: "", args: "" }
      this.call = call
    }
    if (d.id !== undefined) call.id = d.id
    const fn = d.function
    if (fn?.name != null) call.name += fn.name
    if (fn?.arguments != null) call.args += fn.arguments
    return whole
  }

  /** The call being assembled, taken out to be released (the choice finished). */
  take(): PendingCall | undefined {
    const call = this.call
    this.call = undefined
    return call
  }
}
