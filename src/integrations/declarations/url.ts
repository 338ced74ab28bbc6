/**
 * Operation paths with `{param}` placeholders: parsing them (at declaration time, so a typo is
 * found when the integration is declared) and filling them in (at call time).
 */

/** The names of the placeholders of a path template, as a type: `PathParams<'/repos/{owner}/{repo}'>` is `'owner' | 'repo'`. */
export type PathParams<P extends string> = P extends `${string}{${infer Name}}${infer Rest}`
  ? (Name extends `${infer Bare}+` ? Bare : Name) | PathParams<Rest>
  : never;

const PLACEHOLDER = /\{([^{}]*)\}/g;
const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The placeholder names of `template`, in order. Throws a `RangeError` saying what is wrong for
 * an unbalanced brace, an empty or invalid name, or a name used twice. `{name+}` is a greedy
 * placeholder whose value may hold `/` (an S3 object key); its name is `name`.
 *
 * @example
 * ```ts
 * templateParams('/repos/{owner}/{repo}/issues'); // ['owner', 'repo']
 * ```
 */
export function templateParams(template: string): string[] {
  const names: string[] = [];
  const stripped = template.replace(PLACEHOLDER, (_, raw: string) => {
    const name = raw.endsWith('+') ? raw.slice(0, -1) : raw;
    if (!PARAM_NAME.test(name)) {
      throw new RangeError(
        `{${name}} is not a valid placeholder: use letters, digits and _ (e.g. {username})`,
      );
    }
    if (names.includes(name)) throw new RangeError(`{${name}} appears twice`);
    names.push(name);
    return '';
  });
  if (stripped.includes('{') || stripped.includes('}')) {
    throw new RangeError(`has an unbalanced { or }: placeholders look like {name}`);
  }
  return names;
}

/**
 * Fills the placeholders of `template` from `params`, percent-encoding each value as one path
 * segment (so a `/` in a value cannot change the route), except a greedy `{name+}`, whose `/`s
 * are kept and whose segments are encoded one by one. A missing parameter throws a `RangeError`
 * naming it.
 *
 * @example
 * ```ts
 * expandTemplate('/users/{username}', { username: 'octo cat' }); // '/users/octo%20cat'
 * expandTemplate('/{bucket}/{key+}', { bucket: 'b', key: 'a/b c.txt' }); // '/b/a/b%20c.txt'
 * ```
 */
export function expandTemplate(
  template: string,
  params: Readonly<Record<string, unknown>>,
  encode: (value: string) => string = encodeURIComponent,
): string {
  return template.replace(PLACEHOLDER, (_, raw: string) => {
    const greedy = raw.endsWith('+');
    const name = greedy ? raw.slice(0, -1) : raw;
    const value = params[name];
    const enc = greedy ? (s: string) => s.split('/').map(encode).join('/') : encode;
    if (typeof value === 'string') return enc(value);
    if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
      return enc(String(value));
    }
    if (value === undefined || value === null) {
      throw new RangeError(`missing parameter "${name}" for ${template}`);
    }
    throw new TypeError(`parameter "${name}" for ${template} must be a string or a number`);
  });
}

/**
 * Joins a base URL and an operation path by concatenation, not URL resolution, so the base's own
 * path is kept: `https://api.stripe.com/v1` + `/charges` is `https://api.stripe.com/v1/charges`.
 *
 * @example
 * ```ts
 * joinUrl('https://api.stripe.com/v1/', '/charges'); // 'https://api.stripe.com/v1/charges'
 * ```
 */
export function joinUrl(base: string, path: string): string {
  if (path === '') return base;
  return `${base.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;
}
