import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"

/**
 * A duration in options: an Effect `Duration`, a number of milliseconds, or a string such as
 * `"200 millis"` / `"10 seconds"`. Decodes to a `Duration`.
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
