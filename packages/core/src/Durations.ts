/**
 * Durations in options: an Effect `Duration`, a number of milliseconds, or a string such as
 * `"200 millis"` / `"10 seconds"`. Every policy package decodes its durations with this one schema,
 * and config files (where a `Duration` cannot be written) with `DurationFromConfig`.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type * as AST from "effect/SchemaAST"

/**
 * Reads a duration given as a `Duration`, a number of milliseconds, or a string like
 * `"10 seconds"`; `None` when the string is not a duration.
 *
 * @since 0.1.0
 * @category decoding
 */
export const parse = (input: Duration.Duration | number | string): Option.Option<Duration.Duration> =>
  Duration.isDuration(input)
    ? Option.some(input)
    : typeof input === "number"
    ? Option.some(Duration.millis(input))
    : Duration.decodeUnknown(input.trim())

const decodeWith = (input: Duration.Duration | number | string, ast: AST.AST) =>
  Option.match(parse(input), {
    onNone: () =>
      ParseResult.fail(
        new ParseResult.Type(ast, input, `expected a duration like "10 seconds" or a number of milliseconds, got ${JSON.stringify(input)}`)
      ),
    onSome: ParseResult.succeed
  })

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
    decode: (input, _, ast) => decodeWith(input, ast),
    encode: ParseResult.succeed
  }
).annotations({ identifier: "DurationInput" })

/**
 * A duration in a config file (milliseconds or a string like `"30 seconds"`), decoded to a
 * `Duration` and encoded back to milliseconds.
 *
 * @since 0.1.0
 * @category schemas
 */
export const DurationFromConfig = Schema.transformOrFail(
  Schema.Union(Schema.NonNegative, Schema.String),
  Schema.DurationFromSelf,
  {
    strict: true,
    decode: (input, _, ast) => decodeWith(input, ast),
    encode: (duration) => ParseResult.succeed(Duration.toMillis(duration))
  }
).annotations({ identifier: "Duration" })
