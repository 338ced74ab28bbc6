import { ValidationError } from './errors.js';

/**
 * The Standard Schema interface (https://standardschema.dev), inlined so Keel needs no runtime
 * dependency for it. zod, valibot and arktype schemas all implement it.
 */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  readonly '~standard': {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (value: unknown) => StandardResult<Output> | Promise<StandardResult<Output>>;
    readonly types?: { readonly input: Input; readonly output: Output } | undefined;
  };
}

type StandardResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | {
      readonly issues: ReadonlyArray<{
        readonly message: string;
        readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined;
      }>;
    };

/** Validates a value, throwing a `ValidationError` (HTTP 400) that lists every issue. */
export async function validate<T>(
  schema: StandardSchemaV1<unknown, T>,
  value: unknown,
  what: string,
): Promise<T> {
  let result = schema['~standard'].validate(value);
  if (result instanceof Promise) result = await result;
  if (result.issues) {
    const detail = result.issues
      .map((i) => {
        const path = (i.path ?? [])
          .map((p) => (typeof p === 'object' ? String(p.key) : String(p)))
          .join('.');
        return path ? `${path}: ${i.message}` : i.message;
      })
      .join('; ');
    throw new ValidationError(`${what} is invalid: ${detail}`);
  }
  return result.value;
}
