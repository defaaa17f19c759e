/**
 * A config section derived from a policy's options Schema: the same fields, names and
 * validation, each optional and without its default. The defaults stay in the policy's Schema
 * (the baseline reads them from there), so that a section the config leaves out falls through
 * to the next source (`defaults`, then the baseline) field by field.
 */
import * as Schema from "effect/Schema"

/** The value Schema of a field: the Schema inside an `optional`/`optionalWith`, or the field itself. */
type Inner<P> = P extends Schema.optionalWith<infer S, any> ? S
  : P extends Schema.optional<infer S> ? S
  : P extends Schema.Schema.All ? P
  : never

export type PartialFields<F extends Schema.Struct.Fields, K extends keyof F> = { readonly [P in K]: Schema.optional<Inner<F[P]>> }

const inner = (field: Schema.Struct.Field): Schema.Schema.All =>
  Schema.isPropertySignature(field) ? (field as unknown as { readonly from: Schema.Schema.All }).from : field as Schema.Schema.All

/** Every field of `fields` named in `keys` (all of them without `keys`), optional and default-free. */
export const partial = <F extends Schema.Struct.Fields, const K extends keyof F & string = keyof F & string>(
  fields: F,
  keys?: ReadonlyArray<K>
): PartialFields<F, K> => {
  const out: Record<string, Schema.Struct.Field> = {}
  for (const key of keys ?? (Object.keys(fields) as Array<K>)) out[key] = Schema.optional(inner(fields[key]!))
  return out as unknown as PartialFields<F, K>
}
