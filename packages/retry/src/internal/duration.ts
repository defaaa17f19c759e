/** The shared duration schema (it lives in core). */
import { Durations } from "@breakwater/core"

export const DurationInput = Durations.DurationInput
