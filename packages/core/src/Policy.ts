/**
 * The policy contract (DESIGN.md): a policy is `Layer<LanguageModel, E, LanguageModel | R>`, a
 * function from the model below to a wrapped one. Stacking is ordinary `Layer.provide`,
 * outermost first.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { isService, LanguageModel, type Service } from "./LanguageModel.js"

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

/**
 * A policy's `withPolicy` combinator: data-first (`withPolicy(model, options)`) and data-last
 * (`pipe(model, withPolicy(options))`).
 *
 * @since 0.2.0
 * @category models
 */
export interface Combinator<Options, E = never, R = never> {
  (options?: Options): (model: Service) => Effect.Effect<Service, E, R>
  (model: Service, options?: Options): Effect.Effect<Service, E, R>
}

/**
 * Makes a policy's `withPolicy` from its wrap. The two forms are told apart by the first
 * argument (a model: `LanguageModel.isService`); options left out are `{}`.
 *
 * @since 0.2.0
 * @category constructors
 */
export const combinator = <Options extends object, E = never, R = never>(
  wrap: (model: Service, options: Options) => Effect.Effect<Service, E, R>
): Combinator<Options, E, R> =>
  dual((args) => isService(args[0]), (model: Service, options?: Options) => wrap(model, options ?? ({} as Options)))
