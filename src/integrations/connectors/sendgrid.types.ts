/**
 * SendGrid's v3 Mail Send API (`POST /v3/mail/send`), the request as SendGrid documents it. A
 * send is accepted with 202 and no body; the message id is in the `X-Message-Id` header.
 */

/** An address with an optional display name. */
export interface SendGridAddress {
  email: string;
  name?: string;
}

/** One envelope: its recipients, and what to vary for them. */
export interface SendGridPersonalization {
  to: SendGridAddress[];
  cc?: SendGridAddress[];
  bcc?: SendGridAddress[];
  subject?: string;
  headers?: Record<string, string>;
  substitutions?: Record<string, string>;
  /** Handlebars data for a dynamic template. */
  dynamic_template_data?: Record<string, unknown>;
  custom_args?: Record<string, string>;
  send_at?: number;
}

/** `POST /v3/mail/send`. Give `content`, or a `template_id`. */
export interface SendGridMailParams {
  personalizations: SendGridPersonalization[];
  from: SendGridAddress;
  reply_to?: SendGridAddress;
  subject?: string;
  content?: { type: 'text/plain' | 'text/html' | (string & {}); value: string }[];
  template_id?: string;
  categories?: string[];
  custom_args?: Record<string, string>;
  /** Unix seconds: schedule the send (up to 72 hours ahead). */
  send_at?: number;
  batch_id?: string;
  headers?: Record<string, string>;
  mail_settings?: { sandbox_mode?: { enable: boolean } };
  tracking_settings?: Record<string, unknown>;
}

/** SendGrid's error body (400, 401, 403, 413, 429, 5xx). */
export interface SendGridErrorBody {
  errors: { message: string; field: string | null; help: string | null }[];
}
