import { TaggedMetric } from "@breakwater/core"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"

describe("TaggedMetric", () => {
  const counter = Metric.counter("test_tagged_metric_total", { incremental: true })

  it.effect("make: updates land in the series Metric.tagged reads, with every tag, and only there", () =>
    Effect.gen(function*() {
      const hist = Metric.histogram("test_tagged_metric_seconds", MetricBoundaries.linear({ start: 0, width: 1, count: 4 }))
      const observe = TaggedMetric.make(hist, { upstream: "u1", model: "m" })
      observe(0.5)
      observe(2.5)
      const state = yield* Metric.value(Metric.tagged(Metric.tagged(hist, "upstream", "u1"), "model", "m"))
      expect(state.count).toBe(2)
      expect(state.sum).toBe(3)
      expect((yield* Metric.value(Metric.tagged(hist, "upstream", "u1"))).count).toBe(0)
    }))

  it.effect("forValues: one updater per known value (with the common tags), counting as Metric.tagged does", () =>
    Effect.gen(function*() {
      const byOutcome = TaggedMetric.forValues(counter, "outcome", ["won", "lost"], { upstream: "u" })
      expect(Object.keys(byOutcome)).toEqual(["won", "lost"])
      byOutcome.won(1)
      byOutcome.won(1)
      const won = Metric.tagged(Metric.tagged(counter, "upstream", "u"), "outcome", "won")
      expect((yield* Metric.value(won)).count).toBe(2)
      expect((yield* Metric.value(Metric.tagged(Metric.tagged(counter, "upstream", "u"), "outcome", "lost"))).count).toBe(0)
    }))

  it.effect("byValue: a value's updater is made once and kept, up to the limit; past it, made on each use", () =>
    Effect.gen(function*() {
      const byReason = TaggedMetric.byValue(counter, "reason", {}, 2)
      expect(byReason("a")).toBe(byReason("a"))
      expect(byReason("b")).toBe(byReason("b"))
      expect(byReason("c")).not.toBe(byReason("c"))
      byReason("c")(1)
      byReason("c")(1)
      expect((yield* Metric.value(Metric.tagged(counter, "reason", "c"))).count).toBe(2)
    }))
})
