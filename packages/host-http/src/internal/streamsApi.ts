/** `GET /v1/streams/{id}` (reconnect) and `DELETE /v1/streams/{id}` (cancel). */
import { ClientApi } from "@breakwater/gateway"
import { StreamJournal } from "@breakwater/stream-resume"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { fail, noContent } from "./answer.js"
import { type Exchange, header } from "./exchange.js"
import type { Host } from "./host.js"
import * as Lifecycle from "./lifecycle.js"
import { journalDown, notFound, replay } from "./replay.js"

export const prefix = "/v1/streams/"

/** The stream id a path names, or undefined for one that cannot be a stream's. */
const streamIdOf = (path: string): string | undefined => {
  let id: string
  try {
    id = decodeURIComponent(path.slice(prefix.length))
  } catch {
    return undefined
  }
  return id === "" || id.length > 256 || id.includes("/") ? undefined : id
}

export const streams = (h: Host, x: Exchange): void => {
  x.req.resume()
  if (x.method !== "GET" && x.method !== "DELETE") return fail(h, x, ClientApi.methodNotAllowed(x.method, x.path, "GET, DELETE"))
  const key = h.pipeline.authenticate(x.req.headers.authorization)
  if (ClientApi.isApiError(key)) return fail(h, x, key)
  const journal = h.journal
  if (journal === undefined) return fail(h, x, notFound)
  const streamId = streamIdOf(x.path)
  if (streamId === undefined) return fail(h, x, notFound)
  const owner = key?.name ?? ""
  if (x.method === "GET") {
    if (h.lifecycle.draining) return fail(h, x, Lifecycle.shuttingDown)
    let afterSeq = 0
    const lastEventId = header(x, "last-event-id")
    if (lastEventId !== undefined) {
      const at = StreamJournal.parseEventId(lastEventId)
      if (at === undefined || at.streamId !== streamId) return fail(h, x, ClientApi.badRequest("Last-Event-ID is not an event id of this stream", "invalid_last_event_id"))
      afterSeq = at.seq
    }
    Lifecycle.track(h.lifecycle, x)
    return replay(h, x, journal, owner, streamId, afterSeq)
  }
  // DELETE: stops the generation at once, here or (through the journal) on whichever instance runs it.
  h.runtime.runFork(Effect.flatMap(journal.state(streamId), (state) =>
    state._tag === "Unknown" || state.owner !== owner
      ? Effect.succeed(false)
      : Effect.as(journal.cancel(streamId), true))).addObserver((exit) => {
      if (Exit.isFailure(exit)) return fail(h, x, journalDown)
      if (!exit.value) return fail(h, x, notFound)
      const running = h.lifecycle.running.get(streamId)
      if (running !== undefined) Lifecycle.interrupt(running)
      noContent(h, x, streamId)
    })
}
