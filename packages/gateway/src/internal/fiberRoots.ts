/**
 * Effect keeps every root fiber (one started by `runFork`: each request's) in one global `Set`,
 * adding it when it starts and deleting it when it ends. That `Set` lives for the whole process,
 * so V8's rebuilt hash tables left behind by the churn keep finished request fibers (and all they
 * reference) alive through young-generation collections, which then promote them: slow
 * scavenges, a tail on every latency percentile, and full collections for garbage that should
 * never have left the young generation (see `InFlightSet`).
 *
 * `install` gives Effect's global fiber scope an `InFlightSet` instead. `Fiber.roots` still lists
 * the running root fibers, and fibers registered before the switch are still removed when they end.
 */
import { InFlightSet } from "@breakwater/core"
import * as GlobalValue from "effect/GlobalValue"

interface Observable {
  readonly addObserver: (observer: (exit: unknown) => void) => void
}

interface GlobalFiberScope {
  roots: unknown
  add: (runtimeFlags: unknown, child: Observable) => void
}

const installed = Symbol.for("@breakwater/gateway/fiberRoots")

/** True once the global scope uses an `InFlightSet` (false where Effect's internals differ). */
export const install = (): boolean => {
  // The key Effect registers its global fiber scope under; the value is created when Effect loads.
  const scope = GlobalValue.globalValue(Symbol.for("effect/FiberScope/Global"), () => undefined) as
    | (GlobalFiberScope & { [installed]?: true })
    | undefined
  if (scope === undefined || scope === null) return false
  if (scope[installed] === true) return true
  if (!(scope.roots instanceof Set) || typeof scope.add !== "function") return false
  const before: Set<Observable> = scope.roots
  const live = InFlightSet.make<Observable>()
  scope.roots = {
    // Observers registered before the switch delete from the old set.
    delete: (child: Observable) => before.delete(child),
    get size() {
      return before.size + live.size
    },
    *[Symbol.iterator]() {
      yield* before
      yield* live
    }
  }
  scope.add = (_runtimeFlags, child) => {
    const slot = live.add(child)
    child.addObserver(() => {
      live.remove(slot)
    })
  }
  scope[installed] = true
  return true
}
