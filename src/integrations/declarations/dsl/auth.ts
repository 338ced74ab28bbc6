/**
 * Reads the `auth` field: `bearer(env(T))`, `basic(env(U), env(P))`, `api_key(env(K), "appid")`,
 * `oauth2 { ... }`, `aws_signature_v4 { ... }`, or any of them as a block with a `type`.
 */
import type { AuthConfig } from '../auth/config.js';
import { normalizeKey, type Reader } from './reader.js';
import type { BlockNode, Field, Node, Phrase, Value } from './syntax.js';

export function readAuth(r: Reader, v: Value): AuthConfig {
  const label = 'auth';
  const node = r.one(v, label);
  r.origin('auth', node.pos, label);
  if (node.kind === 'ident' && node.name === 'none') return { type: 'none' };
  let kind: string;
  let args: Phrase[] = [];
  let block: BlockNode | undefined;
  if (node.kind === 'call') {
    kind = node.name;
    args = node.args;
    block = node.block;
  } else if (node.kind === 'block') {
    const t = node.fields.find((f) => f.key === 'type');
    if (t === undefined)
      r.fail(
        node.pos,
        `${r.ctx(label)}an auth object needs a type: bearer, basic, api_key, oauth2 or aws_signature_v4`,
      );
    kind = r.word(r.one(t.value, 'auth.type'), 'auth.type');
    block = { ...node, fields: node.fields.filter((f) => f !== t) };
  } else {
    return r.fail(
      node.pos,
      `${r.ctx(label)}expected bearer(env(NAME)), basic(...), api_key(...), oauth2 { ... } or aws_signature_v4 { ... }`,
    );
  }
  const k = normalizeKey(kind);
  const argc = (min: number, max: number, usage: string): void => {
    if (args.length < min || args.length > max) r.fail(node.pos, `${r.ctx(label)}write ${usage}`);
  };
  const fromBlock = (allowed: string[], usage: string): Map<string, Field> => {
    if (block === undefined) r.fail(node.pos, `${r.ctx(label)}write ${usage}`);
    return r.fields(block, allowed, label);
  };
  const field = (fields: Map<string, Field>, names: string[], usage: string): Node => {
    for (const n of names) {
      const f = fields.get(n);
      if (f !== undefined) return r.one(f.value, `auth.${n}`);
    }
    return r.fail(block?.end ?? node.pos, `${r.ctx(label)}${names[0]} is missing: write ${usage}`);
  };

  switch (k) {
    case 'bearer': {
      if (block !== undefined && args.length === 0) {
        const f = fromBlock(['token'], 'bearer { token: env(NAME) }');
        return {
          type: 'bearer',
          token: r.secret(field(f, ['token'], 'token: env(NAME)'), 'auth.token'),
        };
      }
      argc(1, 1, 'bearer(env(NAME))');
      return { type: 'bearer', token: r.secret(r.one(args[0]!, 'auth'), 'auth.token') };
    }
    case 'basic': {
      if (block !== undefined && args.length === 0) {
        const f = fromBlock(
          ['username', 'password'],
          'basic { username: ..., password: env(NAME) }',
        );
        return {
          type: 'basic',
          username: r.configurable(field(f, ['username'], 'username: env(NAME)'), 'auth.username'),
          password: r.secret(field(f, ['password'], 'password: env(NAME)'), 'auth.password'),
        };
      }
      argc(2, 2, 'basic(env(USER), env(PASSWORD))');
      return {
        type: 'basic',
        username: r.configurable(r.one(args[0]!, 'auth'), 'auth.username'),
        password: r.secret(r.one(args[1]!, 'auth'), 'auth.password'),
      };
    }
    case 'api_key':
    case 'apikey': {
      if (block !== undefined && args.length === 0) {
        const f = fromBlock(
          ['key', 'header', 'query', 'in', 'name'],
          'api_key { key: env(NAME), query: "appid" }',
        );
        const key = r.secret(field(f, ['key'], 'key: env(NAME)'), 'auth.key');
        if (f.has('header'))
          return {
            type: 'apiKey',
            key,
            in: 'header',
            name: r.string(field(f, ['header'], ''), 'auth.header'),
          };
        if (f.has('query'))
          return {
            type: 'apiKey',
            key,
            in: 'query',
            name: r.string(field(f, ['query'], ''), 'auth.query'),
          };
        const where = r.word(field(f, ['in'], 'header: "X-Api-Key" or query: "appid"'), 'auth.in');
        return {
          type: 'apiKey',
          key,
          in: where as 'header' | 'query',
          name: r.string(field(f, ['name'], 'name: "X-Api-Key"'), 'auth.name'),
        };
      }
      argc(
        2,
        2,
        'api_key(env(NAME), "param"), api_key(env(NAME), query("param")) or api_key(env(NAME), header("X-Api-Key"))',
      );
      const key = r.secret(r.one(args[0]!, 'auth'), 'auth.key');
      const where = r.one(args[1]!, 'auth');
      if (where.kind === 'string') return { type: 'apiKey', key, in: 'query', name: where.value };
      if (
        where.kind === 'call' &&
        (where.name === 'header' || where.name === 'query') &&
        where.args.length === 1
      ) {
        return {
          type: 'apiKey',
          key,
          in: where.name,
          name: r.string(r.one(where.args[0]!, 'auth'), 'auth'),
        };
      }
      return r.fail(
        where.pos,
        `${r.ctx(label)}expected the parameter name ("appid"), query("appid") or header("X-Api-Key")`,
      );
    }
    case 'oauth2':
    case 'oauth2_client_credentials':
    case 'client_credentials': {
      const usage =
        'oauth2 { token_url: "https://...", client_id: env(ID), client_secret: env(SECRET) }';
      const f = fromBlock(
        [
          'token_url',
          'client_id',
          'client_secret',
          'scope',
          'audience',
          'client_auth',
          'refresh_margin',
        ],
        usage,
      );
      const out: AuthConfig = {
        type: 'oauth2',
        tokenUrl: r.configurable(field(f, ['token_url'], usage), 'auth.token_url'),
        clientId: r.configurable(field(f, ['client_id'], usage), 'auth.client_id'),
        clientSecret: r.secret(field(f, ['client_secret'], usage), 'auth.client_secret'),
      };
      if (f.has('scope')) out.scope = r.string(field(f, ['scope'], ''), 'auth.scope');
      if (f.has('audience')) out.audience = r.string(field(f, ['audience'], ''), 'auth.audience');
      if (f.has('client_auth'))
        out.clientAuth = r.word(field(f, ['client_auth'], ''), 'auth.client_auth') as
          'basic' | 'body';
      if (f.has('refresh_margin'))
        out.refreshMargin = r.duration(field(f, ['refresh_margin'], ''), 'auth.refresh_margin');
      return out;
    }
    case 'aws_signature_v4':
    case 'aws_sig_v4':
    case 'aws_sigv4':
    case 'sigv4': {
      const usage =
        'aws_signature_v4 { access_key: env(AWS_ACCESS_KEY_ID), secret_key: env(AWS_SECRET_ACCESS_KEY), region: env(AWS_REGION), service: "s3" }';
      const f = fromBlock(
        [
          'access_key',
          'access_key_id',
          'secret_key',
          'secret_access_key',
          'session_token',
          'region',
          'service',
          'unsigned_payload',
        ],
        usage,
      );
      const out: AuthConfig = {
        type: 'awsSigV4',
        accessKeyId: r.secret(field(f, ['access_key', 'access_key_id'], usage), 'auth.access_key'),
        secretAccessKey: r.secret(
          field(f, ['secret_key', 'secret_access_key'], usage),
          'auth.secret_key',
        ),
        region: r.configurable(field(f, ['region'], usage), 'auth.region'),
        service: r.string(field(f, ['service'], usage), 'auth.service'),
      };
      if (f.has('session_token'))
        out.sessionToken = r.secret(field(f, ['session_token'], ''), 'auth.session_token');
      if (f.has('unsigned_payload'))
        out.unsignedPayload = r.bool(field(f, ['unsigned_payload'], ''), 'auth.unsigned_payload');
      return out;
    }
    case 'none':
      return { type: 'none' };
    default:
      return r.fail(
        node.pos,
        `${r.ctx(label)}unknown auth '${kind}': use bearer, basic, api_key, oauth2 or aws_signature_v4`,
      );
  }
}
