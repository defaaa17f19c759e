/** `GET /v1/streams/{id}` (reconnect) and `DELETE /v1/streams/{id}` (cancel). */
import { ClientApi, StreamReconnect, Tracing } from "@breakwater/gateway"
import * as Exit from "effect/Exit"
import { fail, noContent } from "./answer.js"
import { type Exchange, header } from "./exchange.js"
import type { Host } from "./host.js"
import * as Lifecycle from "./lifecycle.js"
import { replay } from "./replay.js"

export const prefix = StreamReconnect.prefix

export const streams = (h: Host, x: Exchange): void => {
  x.req.resume()
  if (x.method !== "GET" && x.method !== "DELETE") return fail(h, x, ClientApi.methodNotAllowed(x.method, x.path, "GET, DELETE"))
  const key = h.pipeline.authenticate(x.req.headers.authorization)
  if (ClientApi.isApiError(key)) return fail(h, x, key)
  const journal = h.journal
  if (journal === undefined) return fail(h, x, StreamReconnect.notFound)
  const streamId = StreamReconnect.streamIdOf(x.path)
  if (streamId === undefined) return fail(h, x, StreamReconnect.notFound)
  const owner = StreamReconnect.ownerOf(key)
  if (x.method === "GET") {
    // Traced as a request of its own (the replay an event on it), ended with its answer.
    x.span = h.pipeline.observe(x.requestId, x.req.headers, undefined, Tracing.streamReplay)
    if (h.lifecycle.draining) return fail(h, x, Lifecycle.shuttingDown)
    const afterSeq = StreamReconnect.afterSeqOf(header(x, "last-event-id"), streamId)
    if (ClientApi.isApiError(afterSeq)) return fail(h, x, afterSeq)
    Lifecycle.track(h.lifecycle, x)
    return replay(h, x, journal, owner, streamId, afterSeq)
  }
  // DELETE: stops the generation at once, here or (through the journal) on whichever instance runs it.
  h.runtime.runFork(StreamReconnect.cancel(journal, owner, streamId)).addObserver((exit) => {
      if (Exit.isFailure(exit)) return fail(h, x, StreamReconnect.journalDown)
      if (!exit.value) return fail(h, x, StreamReconnect.notFound)
      const running = h.lifecycle.running.get(streamId)?.exchange
      if (running !== undefined) Lifecycle.interrupt(running)
      noContent(h, x, streamId)
    })
}
