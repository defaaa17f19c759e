/**
 * Renders Effect's metrics as Prometheus text (exposition format 0.0.4). Effect 3 has no
 * Prometheus exporter; this small formatter over `Metric.snapshot` is all `/metrics` needs.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import type * as MetricPair from "effect/MetricPair"
import * as MetricState from "effect/MetricState"
import * as Option from "effect/Option"

const escapeLabel = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, "\\\"")
const sanitizeName = (name: string) => name.replace(/[^a-zA-Z0-9_:]/g, "_")
const labels = (tags: ReadonlyArray<{ readonly key: string; readonly value: string }>, extra?: readonly [string, string]): string => {
  const parts = tags.map((t) => `${sanitizeName(t.key)}="${escapeLabel(t.value)}"`)
  if (extra !== undefined) parts.push(`${extra[0]}="${escapeLabel(extra[1])}"`)
  return parts.length === 0 ? "" : `{${parts.join(",")}}`
}
const num = (n: number | bigint) => (typeof n === "bigint" ? n.toString() : Number.isFinite(n) ? String(n) : n > 0 ? "+Inf" : n < 0 ? "-Inf" : "NaN")

/**
 * Formats a metrics snapshot as Prometheus text.
 *
 * @since 0.1.0
 * @category formatting
 */
export const format = (pairs: ReadonlyArray<MetricPair.MetricPair.Untyped>): string => {
  const byName = new Map<string, { type: string; help: string; lines: Array<string> }>()
  const family = (name: string, type: string, help: Option.Option<string>) => {
    let f = byName.get(name)
    if (f === undefined) {
      f = { type, help: Option.getOrElse(help, () => ""), lines: [] }
      byName.set(name, f)
    }
    return f
  }
  for (const pair of pairs) {
    const key = pair.metricKey
    const name = sanitizeName(key.name)
    const state: unknown = pair.metricState
    const tags = key.tags
    if (MetricState.isCounterState(state)) {
      family(name, "counter", key.description).lines.push(`${name}${labels(tags)} ${num(state.count)}`)
    } else if (MetricState.isGaugeState(state)) {
      family(name, "gauge", key.description).lines.push(`${name}${labels(tags)} ${num(state.value)}`)
    } else if (MetricState.isHistogramState(state)) {
      const f = family(name, "histogram", key.description)
      for (const [bound, count] of state.buckets) {
        f.lines.push(`${name}_bucket${labels(tags, ["le", Number.isFinite(bound) ? String(bound) : "+Inf"])} ${count}`)
      }
      if (!state.buckets.some(([b]) => !Number.isFinite(b))) f.lines.push(`${name}_bucket${labels(tags, ["le", "+Inf"])} ${state.count}`)
      f.lines.push(`${name}_sum${labels(tags)} ${num(state.sum)}`, `${name}_count${labels(tags)} ${state.count}`)
    } else if (MetricState.isFrequencyState(state)) {
      const f = family(name, "counter", key.description)
      for (const [value, count] of state.occurrences) f.lines.push(`${name}${labels(tags, ["value", value])} ${count}`)
    } else if (MetricState.isSummaryState(state)) {
      const f = family(name, "summary", key.description)
      for (const [q, v] of state.quantiles) {
        if (Option.isSome(v)) f.lines.push(`${name}${labels(tags, ["quantile", String(q)])} ${num(v.value)}`)
      }
      f.lines.push(`${name}_sum${labels(tags)} ${num(state.sum)}`, `${name}_count${labels(tags)} ${state.count}`)
    }
  }
  let out = ""
  for (const [name, f] of [...byName].sort(([a], [b]) => a.localeCompare(b))) {
    if (f.help !== "") out += `# HELP ${name} ${f.help.replace(/\n/g, " ")}\n`
    out += `# TYPE ${name} ${f.type}\n${f.lines.join("\n")}\n`
  }
  return out
}

/**
 * The current value of every Effect metric in the process, as Prometheus text.
 *
 * @since 0.1.0
 * @category formatting
 */
export const render: Effect.Effect<string> = Effect.map(Metric.snapshot, format)
