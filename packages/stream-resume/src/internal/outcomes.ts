/** The metric of stream-resume's decisions, tagged once per outcome. */
import { TaggedMetric } from "@breakwater/core"
import * as Metric from "effect/Metric"

export type Outcome = "resumed" | "restarted" | "rejected" | "gave_up" | "terminated"

export const resumesTotal = Metric.counter("breakwater_stream_resumes_total", {
  description:
    "Stream-resume decisions by outcome: resumed (a continuation was spliced in), restarted (an attempt whose content never reached the client was started over), rejected (a continuation was not glued on), gave_up (ended with an error after content), terminated (ended at once, by mode)",
  incremental: true
})

export const outcomes = TaggedMetric.forValues(resumesTotal, "outcome", ["resumed", "restarted", "rejected", "gave_up", "terminated"] satisfies ReadonlyArray<Outcome>)
