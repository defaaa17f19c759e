/**
 * Durations in options: an Effect `Duration`, a number of milliseconds, or a string such as
 * `"200 millis"` / `"10 seconds"`. Every policy package decodes its durations with this one schema.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"

/**
 * A duration in options (`Duration`, milliseconds or a string like `"10 seconds"`), decoded to a `Duration`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const DurationInput = Schema.transformOrFail(
  Schema.Union(Schema.DurationFromSelf, Schema.NonNegative, Schema.String),
  Schema.DurationFromSelf,
  {
    strict: true,
    decode: (input, _, ast) => {
      const decoded = Duration.isDuration(input)
        ? Option.some(input)
        : typeof input === "number"
        ? Option.some(Duration.millis(input))
        : Duration.decodeUnknown(input.trim())
      return Option.match(decoded, {
        onNone: () =>
          ParseResult.fail(
            new ParseResult.Type(ast, input, `expected a duration like "10 seconds" or a number of milliseconds, got ${JSON.stringify(input)}`)
          ),
        onSome: ParseResult.succeed
      })
    },
    encode: ParseResult.succeed
  }
).annotations({ identifier: "DurationInput" })
