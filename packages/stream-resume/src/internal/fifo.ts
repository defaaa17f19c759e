/**
 * Items in the order they came, taken from the oldest end, with removal anywhere.
 *
 * Not a `Set` or a `Map` used as a queue: V8 iterates those from their oldest slot, deleted
 * ones included, until the table is next rebuilt, so finding the oldest entry of one that is
 * steadily added to at one end and removed from at the other costs time in proportion to what
 * was removed (the journal, full, evicts on every new stream). Here a removed item is skipped
 * once, when the front passes it, and the array is rebuilt when half of it is removed items.
 */
export class Fifo<A> {
  private items: Array<A | undefined> = []
  private head = 0
  private removed = 0

  /** `gone(a)`: whether `a` was removed (the owner's own record of it). */
  constructor(private readonly gone: (a: A) => boolean) {}

  push(a: A): void {
    this.items.push(a)
  }

  /** Tells the queue one of its items is now gone, so it knows when to rebuild. */
  forgot(): void {
    this.removed++
    if (this.removed > 64 && this.removed * 2 > this.items.length - this.head) {
      this.items = this.items.slice(this.head).filter((a) => !this.gone(a!))
      this.head = 0
      this.removed = 0
    }
  }

  /** The oldest item (not gone) for which `pred` holds. */
  oldest(pred: (a: A) => boolean): A | undefined {
    const items = this.items
    while (this.head < items.length && this.gone(items[this.head]!)) {
      items[this.head++] = undefined
      this.removed--
    }
    for (let i = this.head; i < items.length; i++) {
      const a = items[i]!
      if (!this.gone(a) && pred(a)) return a
    }
    return undefined
  }
}
