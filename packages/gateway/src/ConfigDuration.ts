/**
 * Durations in config files: a number of milliseconds, or Effect's duration strings
 * (`"30 seconds"`, `"250 millis"`, `"2 minutes"`).
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"

/**
 * A duration written as milliseconds or as a string like `"30 seconds"`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ConfigDuration = Schema.transformOrFail(
  Schema.Union(Schema.NonNegative, Schema.String),
  Schema.DurationFromSelf,
  {
    strict: true,
    decode: (input, _, ast) => {
      const decoded = typeof input === "number" ? Option.some(Duration.millis(input)) : Duration.decodeUnknown(input.trim())
      return Option.match(decoded, {
        onNone: () => ParseResult.fail(new ParseResult.Type(ast, input, `expected a duration like "30 seconds" or a number of milliseconds, got ${JSON.stringify(input)}`)),
        onSome: ParseResult.succeed
      })
    },
    encode: (d) => ParseResult.succeed(Duration.toMillis(d))
  }
).annotations({ identifier: "Duration" })
