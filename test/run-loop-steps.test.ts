/**
 * The default stack's per-call Effect work stays lean: `bench/run-loop-steps.mjs` counts the run
 * loop's steps (Effect's `OpSupervision` hook, so the figure does not depend on the machine) for
 * a non-streaming call and a stream through every policy layer. Each step allocates; issue #19's
 * work took the stack from 91 steps per call to under 50. A layer that goes back to
 * `Effect.onExit` / `acquireUseRelease` per call (about ten steps each) fails this.
 */
import { execFile } from "node:child_process"
import { existsSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"

const root = fileURLToPath(new URL("..", import.meta.url))
// Measured 46 (generate) and 49 (stream) after issue #19's work, 91 and 98 before; the largest
// layer adds 12. The budgets leave room for a step or two, not for a masked finalizer.
const GENERATE_BUDGET = 55
const STREAM_BUDGET = 60
const LAYER_BUDGET = 12
const built = existsSync(join(root, "packages", "timeout", "dist", "index.js"))

const steps = () =>
  new Promise<Array<Record<string, string>>>((resolve, reject) => {
    execFile(process.execPath, ["bench/run-loop-steps.mjs", "--json"], { cwd: root, timeout: 60_000 }, (error, stdout, stderr) => {
      if (error !== null) reject(new Error(`${error.message}\n${stderr}`))
      else resolve(JSON.parse(stdout))
    })
  })

describe("bench/run-loop-steps.mjs", () => {
  it.skipIf(!built)("counts each layer's steps, and the whole default stack stays within its budget", async () => {
    const rows = await steps()
    expect(rows.map((r) => r["stack"])).toEqual(["adapter alone", "+ attempt timeout", "+ breaker", "+ router", "+ retry", "+ stream-resume", "+ deadline"])
    const whole = rows.at(-1)!
    expect(Number(whole["generate: steps per call"])).toBeLessThanOrEqual(GENERATE_BUDGET)
    expect(Number(whole["stream: steps per call"])).toBeLessThanOrEqual(STREAM_BUDGET)
    // No layer costs a masked finalizer's worth per call any more.
    for (const row of rows.slice(1)) expect(Number(row["added by the layer"])).toBeLessThanOrEqual(LAYER_BUDGET)
  }, 90_000)
})
