/**
 * Twilio's Messages API in-process. Sending answers 201 with a `queued` Message; fetching it
 * afterwards answers `delivered` (the mock delivers at once). Twilio's test-credential magic
 * numbers fail as they do against Twilio: `To: +15005550001` → 400 with code 21211, and so on
 * (see {@link TWILIO_MAGIC_TO}).
 */
import type { MockRequest, MockResponse } from '../declarations/mock.js';
import {
  bodyObject,
  connectorMock,
  hexId,
  json,
  mockTimestamp,
  routes,
  stableJson,
  type ConnectorMock,
} from './mock-kit.js';
import type { TwilioMessage } from './twilio.types.js';

/** Twilio's magic `To` numbers (test credentials) → the error they cause. */
export const TWILIO_MAGIC_TO: Readonly<Record<string, { code: number; message: string }>> = {
  '+15005550001': {
    code: 21211,
    message: "The 'To' number +15005550001 is not a valid phone number.",
  },
  '+15005550002': {
    code: 21612,
    message:
      "The 'To' phone number: +15005550002, is not currently reachable using the 'From' phone number via SMS.",
  },
  '+15005550003': {
    code: 21408,
    message:
      "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: +15005550003.",
  },
  '+15005550004': { code: 21610, message: 'Attempt to send to unsubscribed recipient' },
  '+15005550009': { code: 21614, message: "'To' number +15005550009 is not a valid mobile number" },
};

/** Twilio's magic `From` numbers (test credentials) → the error they cause. */
export const TWILIO_MAGIC_FROM: Readonly<Record<string, { code: number; message: string }>> = {
  '+15005550001': {
    code: 21212,
    message:
      "The 'From' number +15005550001 is not a valid phone number, shortcode, or alphanumeric sender ID.",
  },
  '+15005550007': {
    code: 21606,
    message:
      "The 'From' phone number provided (+15005550007) is not a valid message-capable Twilio phone number for this destination.",
  },
  '+15005550008': {
    code: 21611,
    message: "This 'From' number has exceeded the maximum number of queued messages",
  },
};

/**
 * A Twilio mock with its own state (the messages sent so far).
 *
 * @example
 * ```ts
 * const mock = twilioMock();
 * const sms = twilio({ mock, mockMode: true });
 * // To: '+15005550004' → 400 { code: 21610, message: 'Attempt to send to unsubscribed recipient' }
 * ```
 */
export function twilioMock(): ConnectorMock {
  return connectorMock(makeTwilio, (status) =>
    status === 429
      ? {
          ...twilioError(429, 20429, 'Too Many Requests'),
          headers: { 'content-type': 'application/json', 'retry-after': '1' },
        }
      : twilioError(
          status,
          status >= 500 ? 20500 : 20001,
          status >= 500
            ? 'Internal Server Error (mock failure)'
            : `Mock failure with status ${status}`,
        ),
  );
}

function makeTwilio(): (req: MockRequest) => MockResponse {
  const messages = new Map<string, TwilioMessage>();

  const send = (req: MockRequest, { AccountSid }: Record<string, string>): MockResponse => {
    const p = bodyObject(req.body);
    const to = str(p.To);
    const from = str(p.From);
    const service = str(p.MessagingServiceSid);
    const body = str(p.Body) ?? '';
    const media = p.MediaUrl === undefined ? [] : [p.MediaUrl].flat();
    if (to === undefined) return twilioError(400, 21604, "A 'To' phone number is required.");
    if (from === undefined && service === undefined) {
      return twilioError(400, 21603, "A 'From' phone number is required.");
    }
    if (body === '' && media.length === 0)
      return twilioError(400, 21602, 'Message body is required.');
    if (body.length > 1600) {
      return twilioError(
        400,
        21617,
        'The concatenated message body exceeds the 1600 character limit.',
      );
    }
    const magic = (from === undefined ? undefined : TWILIO_MAGIC_FROM[from]) ?? TWILIO_MAGIC_TO[to];
    if (magic !== undefined) return twilioError(400, magic.code, magic.message);

    const seed = req.headers['idempotency-key'] ?? stableJson({ AccountSid, p });
    const sid = `SM${hexId(32, 'sms', seed)}`;
    const date = rfc2822(mockTimestamp('sms', seed));
    const message: TwilioMessage = {
      sid,
      account_sid: AccountSid!,
      api_version: '2010-04-01',
      body,
      date_created: date,
      date_sent: null,
      date_updated: date,
      direction: 'outbound-api',
      error_code: null,
      error_message: null,
      from: from ?? null,
      messaging_service_sid: service ?? null,
      num_media: String(media.length),
      num_segments: String(segments(body)),
      price: null,
      price_unit: 'USD',
      status: 'queued',
      subresource_uris: { media: `/2010-04-01/Accounts/${AccountSid}/Messages/${sid}/Media.json` },
      to,
      uri: `/2010-04-01/Accounts/${AccountSid}/Messages/${sid}.json`,
    };
    messages.set(sid, message);
    return json(201, message);
  };

  const fetch = (req: MockRequest, { AccountSid, Sid }: Record<string, string>): MockResponse => {
    const known = messages.get(Sid!);
    if (known === undefined && !/^(SM|MM)[0-9a-f]{32}$/.test(Sid!)) {
      return twilioError(404, 20404, `The requested resource ${req.path} was not found`);
    }
    // The mock delivers at once; a sid minted before a restart is known by its shape.
    const base = known ?? {
      ...placeholderMessage(AccountSid!, Sid!),
    };
    const delivered: TwilioMessage = {
      ...base,
      status: 'delivered',
      date_sent: base.date_created,
      price: '-0.00790',
    };
    return json(200, delivered);
  };

  return routes(
    [
      { method: 'POST', path: '/2010-04-01/Accounts/{AccountSid}/Messages.json', handle: send },
      {
        method: 'GET',
        path: '/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json',
        handle: fetch,
      },
    ],
    (req) => twilioError(404, 20404, `The requested resource ${req.path} was not found`),
  );
}

function placeholderMessage(accountSid: string, sid: string): TwilioMessage {
  const date = rfc2822(mockTimestamp('sms', sid));
  return {
    sid,
    account_sid: accountSid,
    api_version: '2010-04-01',
    body: '',
    date_created: date,
    date_sent: null,
    date_updated: date,
    direction: 'outbound-api',
    error_code: null,
    error_message: null,
    from: null,
    messaging_service_sid: null,
    num_media: '0',
    num_segments: '1',
    price: null,
    price_unit: 'USD',
    status: 'queued',
    subresource_uris: { media: `/2010-04-01/Accounts/${accountSid}/Messages/${sid}/Media.json` },
    to: '',
    uri: `/2010-04-01/Accounts/${accountSid}/Messages/${sid}.json`,
  };
}

function twilioError(status: number, code: number, message: string): MockResponse {
  return json(status, {
    code,
    message,
    more_info: `https://www.twilio.com/docs/errors/${code}`,
    status,
  });
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** Twilio's dates: RFC 2822 with a numeric zone. */
function rfc2822(unixSeconds: number): string {
  return new Date(unixSeconds * 1000).toUTCString().replace('GMT', '+0000');
}

// The GSM-7 alphabet (basic set and extension); anything else makes the message UCS-2.
const GSM7 =
  /^[@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&'()*+,\-./0-9:;<=>?¡A-ZÄÖÑÜ§¿a-zäöñüà^{}\\[~\]|€]*$/;

/** SMS segments: 160 GSM-7 characters (153 when split) or 70 UCS-2 (67 when split). */
function segments(body: string): number {
  const [single, multi] = GSM7.test(body) ? [160, 153] : [70, 67];
  const length = [...body].length;
  return length <= single ? 1 : Math.ceil(length / multi);
}
