/**
 * The policy contract (DESIGN.md): a policy is `Layer<LanguageModel, E, LanguageModel | R>`, a
 * function from the model below to a wrapped one. Stacking is ordinary `Layer.provide`,
 * outermost first.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { LanguageModel, type Service } from "./LanguageModel.js"

/**
 * A function that wraps a model with a policy.
 *
 * @since 0.1.0
 * @category models
 */
export type Wrap<E = never, R = never> = (model: Service) => Effect.Effect<Service, E, R>

/**
 * Turns a `LanguageModel -> LanguageModel` function into a policy layer. The wrap runs once,
 * when the layer is built, never per request.
 *
 * @since 0.1.0
 * @category constructors
 */
export const layer = <E, R>(wrap: Wrap<E, R>): Layer.Layer<LanguageModel, E, LanguageModel | Exclude<R, Scope.Scope>> =>
  Layer.scoped(LanguageModel, Effect.flatMap(LanguageModel, wrap))

/**
 * Builds a model from a layer that provides one (for example a per-upstream stack handed to
 * the router), within the current scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const build = <E, R>(
  stack: Layer.Layer<LanguageModel, E, R>
): Effect.Effect<Service, E, R | Scope.Scope> =>
  Effect.map(Layer.build(stack), Context.get(LanguageModel))
