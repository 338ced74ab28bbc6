/**
 * The records being migrated are synthetic: record `i` of a service has a content checksum
 * computed from its id, so the old system needs no storage and verification can recompute
 * what every batch should contain.
 */

/** The checksum of records `first .. first+count-1` of a service, as the old system has them. */
export function batchChecksum(serviceId: string, first: number, count: number): number {
  let sum = 0;
  for (let i = first; i < first + count; i++) sum = (sum * 31 + recordHash(serviceId, i)) >>> 0;
  return sum;
}

function recordHash(serviceId: string, index: number): number {
  // FNV-1a over "serviceId/index": stable, cheap, and different for every record.
  let h = 0x811c9dc5;
  for (const ch of `${serviceId}/${index}`) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return h;
}
