/**
 * A set of in-flight objects (requests, fibers) for a long-lived registry that sees one add and
 * one remove per request.
 *
 * Why not a `Set` or a `Map`: V8 rebuilds a hash table's backing store as entries come and go,
 * and the store it leaves behind still points at the entries that were in it. Once the registry
 * is in the old generation, those dead stores are roots for every young-generation collection
 * until the next full one, so requests that finished long ago survive scavenges, get promoted
 * and make each scavenge slow. Here an entry is a slot in an array, cleared when it is removed:
 * nothing is left pointing at a finished request.
 *
 * @since 0.5.0
 */

/**
 * A slot handle: what `add` returns and `remove` takes.
 *
 * @since 0.5.0
 * @category models
 */
export type Slot = number

/**
 * The set.
 *
 * @since 0.5.0
 * @category models
 */
export interface InFlightSet<A> extends Iterable<A> {
  /** Adds `a`; keep the slot to remove it. */
  readonly add: (a: A) => Slot
  /** Removes the entry in `slot`; false if it was already removed. */
  readonly remove: (slot: Slot) => boolean
  /** The entries in the set. */
  readonly size: number
}

class SlotArray<A> implements InFlightSet<A> {
  private readonly slots: Array<A | undefined> = []
  private readonly free: Array<Slot> = []
  private count = 0
  add = (a: A): Slot => {
    this.count++
    const slot = this.free.pop()
    if (slot === undefined) return this.slots.push(a) - 1
    this.slots[slot] = a
    return slot
  }
  remove = (slot: Slot): boolean => {
    if (this.slots[slot] === undefined) return false
    this.slots[slot] = undefined
    this.free.push(slot)
    this.count--
    return true
  }
  get size(): number {
    return this.count
  }
  *[Symbol.iterator](): Iterator<A> {
    for (const a of this.slots) if (a !== undefined) yield a
  }
}

/**
 * An empty set.
 *
 * @since 0.5.0
 * @category constructors
 */
export const make = <A>(): InFlightSet<A> => new SlotArray<A>()
