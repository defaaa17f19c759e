/**
 * `@breakwater/host-platform`: the gateway's HTTP API as an `@effect/platform` router.
 *
 * @since 0.3.0
 */

/**
 * The gateway's API as an `HttpRouter` to mount on any `@effect/platform` server.
 *
 * @since 0.3.0
 */
export * as GatewayRouter from "./GatewayRouter.js"
