/**
 * One request being served: the one object a request allocates, passed to every step instead of
 * a list of positional parameters. It also carries what the lifecycle needs to stop its work
 * (the fiber, the client-gone hook, the detach timer) and the key share it holds.
 */
import type { InFlightSet } from "@breakwater/core"
import type { Gateway, RequestPipeline, StatusBoard, Tracing } from "@breakwater/gateway"
import type * as Fiber from "effect/Fiber"
import type * as http from "node:http"

export interface Exchange {
  readonly req: http.IncomingMessage
  readonly res: http.ServerResponse
  /** The path as logged and measured (the chat route's alias resolved). */
  path: string
  readonly method: string
  readonly requestId: string
  /** `performance.now()` when the request arrived. */
  readonly startedAt: number
  /** The log fields that say what was asked (model, stream, key, stream id), once known. */
  fields: Record<string, unknown> | undefined
  /** The work running for it, stopped when the client leaves (unless it detaches) or at shutdown. */
  fiber: Fiber.RuntimeFiber<unknown, unknown> | undefined
  /** Called when the client left before the response ended; true when the work goes on (detached). */
  onClientGone: (() => boolean) | undefined
  /** Disarms the detach grace of a generation whose client left (it ended). */
  undetach: (() => void) | undefined
  /** The client key whose concurrency share this request holds, once it started a generation. */
  share: string | undefined
  /** Its slot among the requests in flight, while tracked. */
  slot: InFlightSet.Slot | undefined
  /** The request's span when the gateway traces, ended with the request (`finish`). */
  span: Tracing.RequestSpan | undefined
  /** The client API of a model request (its error shape); `undefined` elsewhere (OpenAI's shape). */
  protocol: RequestPipeline.Protocol | undefined
  /** The status board's record of a chat request, ended by `finish`. */
  board: StatusBoard.RequestRecord | undefined
}

export const make = (
  req: http.IncomingMessage,
  res: http.ServerResponse,
  path: string,
  requestId: string,
  startedAt: number
): Exchange => ({
  req,
  res,
  path,
  method: req.method ?? "GET",
  requestId,
  startedAt,
  fields: undefined,
  fiber: undefined,
  onClientGone: undefined,
  undetach: undefined,
  share: undefined,
  slot: undefined,
  span: undefined,
  protocol: undefined,
  board: undefined
})

/** A request header's (first) value. */
export const header = (x: Exchange, name: string): string | undefined => {
  const value = x.req.headers[name]
  return Array.isArray(value) ? value[0] : value
}

/** The log fields of a chat request once it is decoded. */
export const chatFields = (model: string, stream: boolean, key: Gateway.ClientKey | undefined): Record<string, unknown> => ({
  model,
  stream,
  key: key?.name
})
