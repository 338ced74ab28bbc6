/**
 * Twilio's Programmable Messaging API (api.twilio.com/2010-04-01), the Message resource as
 * Twilio documents it. Parameter names are Twilio's (`To`, `From`, `Body`), since they go on
 * the wire form-encoded as they are.
 */

/** `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`. */
export interface TwilioSendSmsParams {
  /** E.164: `+15558675310`. */
  To: string;
  /** A Twilio number in E.164; or give `MessagingServiceSid`. */
  From?: string;
  MessagingServiceSid?: string;
  /** Up to 1600 characters. */
  Body?: string;
  /** One media URL (MMS). */
  MediaUrl?: string;
  /** Where Twilio posts status changes (queued, sent, delivered, failed). */
  StatusCallback?: string;
}

/** `GET /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json`. */
export interface TwilioFetchMessageParams {
  Sid: string;
}

/** Twilio's Message resource. */
export interface TwilioMessage {
  /** `SM` + 32 hex characters. */
  sid: string;
  account_sid: string;
  api_version: '2010-04-01';
  body: string;
  /** RFC 2822: `Mon, 01 Jan 2024 00:00:00 +0000`. */
  date_created: string;
  date_sent: string | null;
  date_updated: string;
  direction: 'outbound-api' | 'inbound' | 'outbound-call' | 'outbound-reply';
  error_code: number | null;
  error_message: string | null;
  from: string | null;
  messaging_service_sid: string | null;
  num_media: string;
  num_segments: string;
  price: string | null;
  price_unit: string;
  status:
    | 'accepted'
    | 'queued'
    | 'sending'
    | 'sent'
    | 'failed'
    | 'delivered'
    | 'undelivered'
    | 'receiving'
    | 'received';
  subresource_uris: { media: string };
  to: string;
  uri: string;
}

/** The body of every Twilio error response. */
export interface TwilioErrorBody {
  /** Twilio's error code: 21211 invalid To, 21610 unsubscribed recipient, 20429 too many requests. */
  code: number;
  message: string;
  more_info: string;
  status: number;
}
