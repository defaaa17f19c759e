import { HostRuntime } from "@breakwater/gateway"
import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as GlobalValue from "effect/GlobalValue"

// Effect's global fiber scope, where `runFork` registers root fibers.
const globalScope = () => GlobalValue.globalValue(Symbol.for("effect/FiberScope/Global"), () => undefined) as unknown as { roots: unknown }

describe("HostRuntime: the root-fiber registry", () => {
  it("is no longer a Set once a host runtime exists, and Fiber.roots still lists exactly the running root fibers", async () => {
    // A root fiber started before the switch: it must still be listed, and removed when it ends.
    const gateBefore = Effect.runSync(Deferred.make<void>())
    const before = Effect.runFork(Deferred.await(gateBefore))
    HostRuntime.make({ secrets: [], sink: () => {} })
    expect(globalScope().roots).not.toBeInstanceOf(Set)

    const gateAfter = Effect.runSync(Deferred.make<void>())
    const after = Effect.runFork(Deferred.await(gateAfter))
    const listed = async () => (await Effect.runPromise(Fiber.roots)).map((f) => f.id())
    expect(await listed()).toEqual(expect.arrayContaining([before.id(), after.id()]))

    Effect.runSync(Deferred.succeed(gateAfter, undefined))
    await Effect.runPromise(Fiber.join(after))
    const afterEnded = await listed()
    expect(afterEnded).toContainEqual(before.id())
    expect(afterEnded).not.toContainEqual(after.id())

    Effect.runSync(Deferred.succeed(gateBefore, undefined))
    await Effect.runPromise(Fiber.join(before))
    expect(await listed()).not.toContainEqual(before.id())
  })

  it("is installed once: a second host runtime keeps the same registry", () => {
    HostRuntime.make({ secrets: [], sink: () => {} })
    const roots = globalScope().roots
    HostRuntime.make({ secrets: [], sink: () => {} })
    expect(globalScope().roots).toBe(roots)
  })
})
