/**
 * `Retry-After` and HTTP-date parsing (RFC 9110), shared by outbound webhook delivery and the
 * integrations' error classification: one strict parser of the three date forms recipients must
 * accept, instead of one per surface.
 */

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const MONTH = '(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)';
const IMF_FIXDATE = new RegExp(
  `^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\\d{2}) ${MONTH} (\\d{4}) (\\d{2}):(\\d{2}):(\\d{2}) GMT$`,
);
const RFC_850 = new RegExp(
  `^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (\\d{2})-${MONTH}-(\\d{2}) (\\d{2}):(\\d{2}):(\\d{2}) GMT$`,
);
const ASCTIME = new RegExp(
  `^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ${MONTH} ([ \\d]\\d) (\\d{2}):(\\d{2}):(\\d{2}) (\\d{4})$`,
);

/**
 * Parses an HTTP-date in any of the three forms RFC 9110 requires recipients to accept
 * (IMF-fixdate, RFC 850, asctime), always as GMT. Returns epoch milliseconds or undefined.
 *
 * @example
 * ```ts
 * parseHttpDate('Wed, 21 Oct 2015 07:28:00 GMT'); // 1445412480000
 * ```
 */
export function parseHttpDate(text: string, nowMs?: number): number | undefined {
  let parts: { day: number; month: string; year: number; h: number; m: number; s: number };
  let match: RegExpExecArray | null;
  if ((match = IMF_FIXDATE.exec(text))) {
    const [, day, month, year, h, m, s] = match as unknown as string[];
    parts = { day: +day!, month: month!, year: +year!, h: +h!, m: +m!, s: +s! };
  } else if ((match = RFC_850.exec(text))) {
    const [, day, month, yy, h, m, s] = match as unknown as string[];
    // RFC 9110: a two-digit year more than 50 years in the future is in the past century.
    const currentYear = new Date(nowMs ?? Date.now()).getUTCFullYear();
    let year = 2000 + Number(yy);
    if (year > currentYear + 50) year -= 100;
    parts = { day: +day!, month: month!, year, h: +h!, m: +m!, s: +s! };
  } else if ((match = ASCTIME.exec(text))) {
    const [, month, day, h, m, s, year] = match as unknown as string[];
    parts = { day: +day!.trim(), month: month!, year: +year!, h: +h!, m: +m!, s: +s! };
  } else {
    return undefined;
  }
  const ms = Date.UTC(
    parts.year,
    MONTHS.indexOf(parts.month),
    parts.day,
    parts.h,
    parts.m,
    parts.s,
  );
  const check = new Date(ms);
  // Date.UTC silently rolls over impossible dates (31 Feb, 25:00): refuse those.
  if (
    check.getUTCDate() !== parts.day ||
    check.getUTCHours() !== parts.h ||
    check.getUTCMinutes() !== parts.m ||
    check.getUTCSeconds() !== parts.s
  ) {
    return undefined;
  }
  return ms;
}

/**
 * Parses a `Retry-After` header into a delay in milliseconds from `nowMs`: either whole seconds
 * (`120`) or an HTTP-date (a date in the past gives 0). Returns undefined when the value is
 * missing or not valid, in which case the schedule alone decides.
 *
 * @example
 * ```ts
 * parseRetryAfter('120', now); // 120_000
 * parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT', Date.parse('2015-10-21T07:27:00Z')); // 60_000
 * ```
 */
export function parseRetryAfter(
  value: string | null | undefined,
  nowMs: number,
): number | undefined {
  if (value === null || value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) {
    const seconds = Number(text);
    return Number.isSafeInteger(seconds * 1000) ? seconds * 1000 : undefined;
  }
  const at = parseHttpDate(text, nowMs);
  return at === undefined ? undefined : Math.max(0, at - nowMs);
}
