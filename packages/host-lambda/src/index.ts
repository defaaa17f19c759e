/**
 * `@breakwater/host-lambda`: the Breakwater gateway as an AWS Lambda handler.
 *
 * @since 0.1.0
 */

/**
 * Lambda event and result shapes (API Gateway v1/v2, function URLs).
 *
 * @since 0.1.0
 */
export * as LambdaEvent from "./LambdaEvent.js"

/**
 * The handler.
 *
 * @since 0.1.0
 */
export * as LambdaHandler from "./LambdaHandler.js"

/**
 * The response-streaming contract and a faithful local implementation.
 *
 * @since 0.1.0
 */
export * as ResponseStream from "./ResponseStream.js"
