/**
 * `@breakwater/stream-resume`: one stable stream for the client, whatever breaks upstream.
 *
 * @since 0.1.0
 */

/**
 * The resume policy: continuation, seam splicing, one envelope, modes.
 *
 * @since 0.1.0
 */
export * as StreamResume from "./StreamResume.js"

/**
 * The event journal behind client reconnects (`Last-Event-ID`): the store interface and the in-memory store.
 *
 * @since 0.1.0
 */
export * as StreamJournal from "./StreamJournal.js"

/**
 * A dependency-free client helper (fetch + SSE + `Last-Event-ID` reconnect) for Node and browsers.
 *
 * @since 0.1.0
 */
export * as ResumeClient from "./ResumeClient.js"
