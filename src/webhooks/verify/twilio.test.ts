import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { WebhookConfigError } from '../errors.js';
import { verifyTwilio } from './twilio.js';

const TOKEN = '12345';
const URL_ = 'https://mycompany.com/myapp.php?foo=1&bar=2';
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

// Twilio's published example ("Webhooks security", twilio.com/docs/usage/security). Written
// out of order on purpose: the signature sorts the parameters.
const DOCS_BODY = new URLSearchParams([
  ['To', '+18005551212'],
  ['CallSid', 'CA1234567890ABCDE'],
  ['Digits', '1234'],
  ['From', '+12349013030'],
  ['Caller', '+12349013030'],
]).toString();
const DOCS_SIGNATURE = '0/KCTR6DLpKmkAf8muzZqo1nDgQ=';

// The vectors of Twilio's own helper libraries (twilio-python tests/unit/test_request_validator.py,
// the same in twilio-node, -php, -csharp).
const LIB_BODY = new URLSearchParams({
  CallSid: 'CA1234567890ABCDE',
  Digits: '1234',
  From: '+14158675309',
  To: '+18005551212',
  Caller: '+14158675309',
}).toString();
const JSON_BODY = '{"property": "value", "boolean": true}';
const JSON_HASH = '0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620';

function verify(
  body: string,
  signature: string,
  url = URL_,
  headers: Record<string, string> = FORM,
) {
  return verifyTwilio({
    rawBody: body,
    headers: { ...headers, 'X-Twilio-Signature': signature },
    secret: TOKEN,
    url,
  });
}

describe('verifyTwilio: form posts', () => {
  it("accepts Twilio's documented example", () => {
    expect(verify(DOCS_BODY, DOCS_SIGNATURE)).toEqual({
      ok: true,
      provider: 'twilio',
      body: DOCS_BODY,
      replayKey: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
  });

  it('gives the variants that verify alike one replayKey, and other signed data another', () => {
    const key = (body: string, signature: string, url = URL_) => {
      const r = verify(body, signature, url);
      return r.ok ? r.replayKey : `rejected: ${r.reason}`;
    };
    const plain = key(LIB_BODY, 'RSOYDt4T1cUTdK1PDd93/VVr8B8=');
    expect(plain).toMatch(/^[0-9a-f]{64}$/);
    // The same signed data with the parameters reordered and repeated, or a port in the URL.
    const reordered = [...new URLSearchParams(LIB_BODY)].reverse();
    const shuffled = new URLSearchParams([...reordered, reordered[0]!]).toString();
    expect(key(shuffled, 'RSOYDt4T1cUTdK1PDd93/VVr8B8=')).toBe(plain);
    expect(key(LIB_BODY, 'kvajT1Ptam85bY51eRf/AJRuM3w=')).toBe(plain);
    expect(key(LIB_BODY, 'RSOYDt4T1cUTdK1PDd93/VVr8B8=', URL_.replace('.com', '.com:443'))).toBe(
      plain,
    );
    expect(key(DOCS_BODY, DOCS_SIGNATURE)).not.toBe(plain);
  });

  it("accepts the helper libraries' vectors, with and without ports", () => {
    expect(verify(LIB_BODY, 'RSOYDt4T1cUTdK1PDd93/VVr8B8=').ok).toBe(true);
    // Signed with :443 added; the request URL has no port.
    expect(verify(LIB_BODY, 'kvajT1Ptam85bY51eRf/AJRuM3w=').ok).toBe(true);
    // The request URL has a port; Twilio signed it without.
    expect(
      verify(LIB_BODY, 'RSOYDt4T1cUTdK1PDd93/VVr8B8=', URL_.replace('.com', '.com:1234')).ok,
    ).toBe(true);
    expect(verify(LIB_BODY, '0ZXoZLH/DfblKGATFgpif+LLRf4=', URL_.replace('https', 'http')).ok).toBe(
      true,
    );
    expect(
      verify(
        LIB_BODY,
        'Zmvh+3yNM1Phv2jhDCwEM3q5ebU=',
        URL_.replace('.com', '.com:1234').replace('https', 'http'),
      ).ok,
    ).toBe(true);
  });

  it('sorts repeated parameters by value and drops duplicates, as the libraries do', () => {
    const body = 'Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234&Digits=1234';
    expect(verify(body, 'IK+Dwps556ElfBT0I3Rgjkr1wJU=').ok).toBe(true);
  });

  it('agrees with an independent implementation on encoded values and an empty body', () => {
    const params: [string, string][] = [
      ['Body', 'héllo wörld & more+stuff'],
      ['From', '+15550001111'],
      ['MediaUrl0', 'https://api.twilio.com/x?y=1'],
    ];
    const data =
      URL_ +
      [...params]
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([k, v]) => k + v)
        .join('');
    const sig = createHmac('sha1', TOKEN).update(data).digest('base64');
    expect(verify(new URLSearchParams(params).toString(), sig).ok).toBe(true);
    const get = createHmac('sha1', TOKEN).update(URL_).digest('base64');
    expect(verify('', get, URL_, {}).ok).toBe(true);
  });

  it('returns the idempotency token as the id', () => {
    const result = verifyTwilio({
      rawBody: DOCS_BODY,
      headers: {
        ...FORM,
        'X-Twilio-Signature': DOCS_SIGNATURE,
        'I-Twilio-Idempotency-Token': 'abc-123',
      },
      secret: TOKEN,
      url: URL_,
    });
    expect(result).toMatchObject({ ok: true, id: 'abc-123' });
  });

  it('rejects a tampered parameter, a different URL and a wrong token', () => {
    expect(verify(DOCS_BODY.replace('Digits=1234', 'Digits=9999'), DOCS_SIGNATURE)).toMatchObject({
      ok: false,
      code: 'invalid_signature',
    });
    expect(verify(DOCS_BODY, DOCS_SIGNATURE, URL_.replace('bar=2', 'bar=3')).ok).toBe(false);
    expect(verify(DOCS_BODY, DOCS_SIGNATURE, 'https://evil.example/myapp.php?foo=1&bar=2').ok).toBe(
      false,
    );
    const wrong = verifyTwilio({
      rawBody: DOCS_BODY,
      headers: { ...FORM, 'X-Twilio-Signature': DOCS_SIGNATURE },
      secret: '54321',
      url: URL_,
    });
    expect(wrong.ok).toBe(false);
    if (!wrong.ok) expect(wrong.reason).not.toContain('54321');
  });

  it('says what is malformed or missing', () => {
    expect(
      verifyTwilio({ rawBody: DOCS_BODY, headers: FORM, secret: TOKEN, url: URL_ }),
    ).toMatchObject({
      ok: false,
      reason: 'the X-Twilio-Signature header is missing',
    });
    expect(verify(DOCS_BODY, 'not base64!')).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/malformed/),
    });
    expect(verify(DOCS_BODY, Buffer.alloc(32).toString('base64'))).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/20-byte/),
    });
    expect(
      verify(JSON_BODY, DOCS_SIGNATURE, URL_, { 'content-type': 'application/json' }),
    ).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/application\/json but the URL has no bodySHA256/),
    });
  });

  it('throws when the url is not absolute: a configuration bug', () => {
    expect(() =>
      verifyTwilio({
        rawBody: DOCS_BODY,
        headers: { 'X-Twilio-Signature': DOCS_SIGNATURE },
        secret: TOKEN,
        url: '/myapp.php',
      }),
    ).toThrow(WebhookConfigError);
  });
});

describe('verifyTwilio: JSON bodies (bodySHA256)', () => {
  const JSON_URL = `${URL_}&bodySHA256=${JSON_HASH}`;
  const JSON_HEADERS = { 'content-type': 'application/json' };

  it("accepts the helper libraries' vector", () => {
    expect(createHash('sha256').update(JSON_BODY).digest('hex')).toBe(JSON_HASH);
    expect(verify(JSON_BODY, 'a9nBmqA0ju/hNViExpshrM61xv4=', JSON_URL, JSON_HEADERS)).toEqual({
      ok: true,
      provider: 'twilio',
      body: JSON_BODY,
      replayKey: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    // twilio-csharp: a URL whose only parameter is bodySHA256.
    expect(
      verify(
        JSON_BODY,
        'y77kIzt2vzLz71DgmJGsen2scGs=',
        `https://mycompany.com/myapp.php?bodySHA256=${JSON_HASH}`,
        JSON_HEADERS,
      ).ok,
    ).toBe(true);
  });

  it('rejects a body that does not match bodySHA256, even though the URL signature is valid', () => {
    expect(
      verify(
        '{"property": "evil", "boolean": true}',
        'a9nBmqA0ju/hNViExpshrM61xv4=',
        JSON_URL,
        JSON_HEADERS,
      ),
    ).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/does not match the bodySHA256/),
    });
  });

  it('rejects a bodySHA256 that is not a hash, and a wrong token', () => {
    expect(
      verify(JSON_BODY, 'a9nBmqA0ju/hNViExpshrM61xv4=', `${URL_}&bodySHA256=xyz`, JSON_HEADERS),
    ).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/not a hex SHA-256/),
    });
    expect(
      verifyTwilio({
        rawBody: JSON_BODY,
        headers: { ...JSON_HEADERS, 'X-Twilio-Signature': 'a9nBmqA0ju/hNViExpshrM61xv4=' },
        secret: 'other',
        url: JSON_URL,
      }).ok,
    ).toBe(false);
  });
});
