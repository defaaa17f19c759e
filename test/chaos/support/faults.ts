/**
 * The faults the fault matrix injects, shared by its chat-completions and Messages variants.
 */
import { MockUpstream } from "@breakwater/testing"

const { Fault } = MockUpstream

/** An HTTP-date Retry-After ~1-2 s ahead, computed when a cell runs (a date computed at load is long past by then). */
const retryDate = () => new Date(Date.now() + 2_000).toUTCString()

/** A behavior, or one built when its cell starts (a time-relative header). */
export type Scenario = MockUpstream.Behavior | (() => MockUpstream.Behavior)

/** Every fault of the matrix, by name: status answers, resets and stalls, and mid-stream breaks. */
export const faults: ReadonlyArray<readonly [string, Scenario]> = [
  ["429 retry-after seconds", { fault: Fault.Status({ status: 429 }), headers: { "retry-after": "1" } }],
  ["429 retry-after http-date", () => ({ fault: Fault.Status({ status: 429 }), headers: { "retry-after": retryDate() } })],
  ["429 retry-after-ms", { fault: Fault.Status({ status: 429 }), headers: { "retry-after-ms": "50" } }],
  ["500", { fault: Fault.Status({ status: 500 }) }],
  ["502", { fault: Fault.Status({ status: 502 }) }],
  ["503", { fault: Fault.Status({ status: 503 }) }],
  ["504", { fault: Fault.Status({ status: 504 }) }],
  ["529 overloaded", { fault: Fault.Status({ status: 529 }) }],
  ["reset before headers", { fault: Fault.ResetBeforeHeaders() }],
  ["stall before headers", { fault: Fault.StallBeforeHeaders() }],
  ["slow first token", { firstChunkDelayMs: 1_500 }],
  ["stall mid-stream", { fault: Fault.Stall({ afterChunks: 5 }) }],
  ["cut at chunk 3", { fault: Fault.Cut({ afterChunks: 3 }) }],
  ["cut at chunk 11", { fault: Fault.Cut({ afterChunks: 11 }) }],
  ["malformed chunk", { fault: Fault.Malformed({ afterChunks: 6 }) }],
  ["error event mid-stream", { fault: Fault.ErrorEvent({ afterChunks: 8 }) }],
  ["no terminator", { fault: Fault.NoTerminator() }]
]

/** The behaviour of a fault, built now (a time-relative header is computed when its cell runs). */
export const behaviorOf = (scenario: Scenario): MockUpstream.Behavior => (typeof scenario === "function" ? scenario() : scenario)
