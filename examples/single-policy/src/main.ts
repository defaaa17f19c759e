import * as Effect from "effect/Effect"
import { program } from "./program.js"

Effect.runPromise(program).then(
  ({ text, upstreamCalls, retries }) => {
    process.stdout.write(`answer: ${text}\nupstream calls: ${upstreamCalls} (retries: ${retries})\n`)
  },
  (error: unknown) => {
    process.stderr.write(`failed: ${String(error)}\n`)
    process.exit(1)
  }
)
