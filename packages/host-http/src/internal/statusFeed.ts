/**
 * The status page's event stream: each viewer gets a full snapshot when it connects, then all
 * viewers share one compact update a second from one timer, which runs only while a viewer is
 * connected (unref'd, so it never holds the process open).
 */
import type { Gateway, StatusBoard } from "@breakwater/gateway"
import * as Exit from "effect/Exit"
import type * as http from "node:http"
import type { Host } from "./host.js"

const TICK_MS = 1000
/** An update carries this much of the history (a late tick must not leave a gap). */
const UPDATE_SECONDS = 5
const UPDATE_SLOTS = 2

export interface Feed {
  readonly board: StatusBoard.StatusBoard
  readonly viewers: Set<http.ServerResponse>
  timer: ReturnType<typeof setInterval> | undefined
  /** The last request `seq` the viewers were sent. */
  sentSeq: number
  ticking: boolean
}

export const make = (board: StatusBoard.StatusBoard): Feed => ({ board, viewers: new Set(), timer: undefined, sentSeq: 0, ticking: false })

/** What the page needs besides the board: the routes with their targets, and each upstream's circuits. */
const topology = (health: Gateway.Health | undefined) => ({
  upstreams: health?.upstreams ?? [],
  routes: health?.routes ?? []
})

const send = (res: http.ServerResponse, event: string, data: string): void => {
  // A viewer that does not read keeps its backlog bounded: it misses updates until it drains.
  if (res.writableNeedDrain) return
  res.write(`event: ${event}\ndata: ${data}\n\n`)
}

const withHealth = (h: Host, then: (health: Gateway.Health | undefined) => void): void => {
  h.runtime.runFork(h.gateway.health).addObserver((exit) => then(Exit.isSuccess(exit) ? exit.value : undefined))
}

const tick = (h: Host, feed: Feed): void => {
  if (feed.ticking) return
  feed.ticking = true
  withHealth(h, (health) => {
    feed.ticking = false
    if (feed.viewers.size === 0) return
    const update = feed.board.snapshot({ seconds: UPDATE_SECONDS, slots: UPDATE_SLOTS, sinceSeq: feed.sentSeq })
    feed.sentSeq = update.seq
    const data = JSON.stringify({ ...topology(health), ...update })
    for (const res of feed.viewers) send(res, "update", data)
  })
}

/** Adds a viewer: its snapshot now, the shared updates after; removed when its connection closes. */
export const watch = (h: Host, feed: Feed, res: http.ServerResponse, onClose: () => void): void => {
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-store",
    connection: "keep-alive",
    "x-accel-buffering": "no"
  })
  res.write("retry: 2000\n\n")
  feed.viewers.add(res)
  if (feed.timer === undefined) {
    feed.sentSeq = feed.board.snapshot({ seconds: 1, slots: 1, sinceSeq: Number.MAX_SAFE_INTEGER }).seq
    feed.timer = setInterval(() => tick(h, feed), TICK_MS)
    feed.timer.unref()
  }
  withHealth(h, (health) => {
    if (!res.destroyed) send(res, "snapshot", JSON.stringify({ ...topology(health), ...feed.board.snapshot() }))
  })
  res.once("close", () => {
    feed.viewers.delete(res)
    if (feed.viewers.size === 0 && feed.timer !== undefined) {
      clearInterval(feed.timer)
      feed.timer = undefined
    }
    onClose()
  })
}
