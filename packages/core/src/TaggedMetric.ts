/**
 * Tagged metrics made once: `Metric.tagged` builds a new metric (and its key) on every call, so
 * a metric updated per request or per attempt with a tag (an outcome, a reason, an upstream) is
 * tagged once per value and kept, here, instead of by a cache in each package.
 *
 * @since 0.2.0
 */
import * as Metric from "effect/Metric"

/**
 * A metric tagged `key` with each of a known set of values, all made at once.
 *
 * @since 0.2.0
 * @category constructors
 */
export const forValues = <const V extends string, Type, In, Out>(
  metric: Metric.Metric<Type, In, Out>,
  key: string,
  values: ReadonlyArray<V>
): Readonly<Record<V, Metric.Metric<Type, In, Out>>> => {
  const out = {} as Record<V, Metric.Metric<Type, In, Out>>
  for (const value of values) out[value] = Metric.tagged(metric, key, value)
  return out
}

/**
 * A metric tagged `key` with a value known only when it is used (an error's tag, a breaker's
 * key): each value's metric is made on its first use and kept, up to `limit` values (1024); past
 * that, a value's metric is made on each use, so values from outside cannot grow memory.
 *
 * @since 0.2.0
 * @category constructors
 */
export const byValue = <Type, In, Out>(
  metric: Metric.Metric<Type, In, Out>,
  key: string,
  limit = 1024
): (value: string) => Metric.Metric<Type, In, Out> => {
  const made = new Map<string, Metric.Metric<Type, In, Out>>()
  return (value) => {
    let tagged = made.get(value)
    if (tagged === undefined) {
      tagged = Metric.tagged(metric, key, value)
      if (made.size < limit) made.set(value, tagged)
    }
    return tagged
  }
}
