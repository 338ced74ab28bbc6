/**
 * Shippo's shipping API (api.goshippo.com, API version 2018-02-08): shipments with their rates,
 * label purchases (transactions) and tracking, typed as Shippo documents them. Amounts are
 * decimal strings (`"5.50"`).
 */

/** A postal address. */
export interface ShippoAddress {
  name?: string;
  company?: string;
  street1: string;
  street2?: string;
  city: string;
  state?: string;
  zip: string;
  /** ISO 3166 alpha-2: `US`. */
  country: string;
  phone?: string;
  email?: string;
  is_residential?: boolean;
}

/** A parcel: dimensions and weight with their units. */
export interface ShippoParcel {
  length: string;
  width: string;
  height: string;
  distance_unit: 'cm' | 'in' | 'ft' | 'mm' | 'm' | 'yd';
  weight: string;
  mass_unit: 'g' | 'oz' | 'lb' | 'kg';
}

/** `POST /shipments/`. The connector asks for rates synchronously (`async: false`). */
export interface ShippoCreateShipmentParams {
  address_from: ShippoAddress;
  address_to: ShippoAddress;
  parcels: ShippoParcel[];
  address_return?: ShippoAddress;
  shipment_date?: string;
  extra?: Record<string, unknown>;
  customs_declaration?: string;
  carrier_accounts?: string[];
  metadata?: string;
}

/** A service level: `Priority Mail`, token `usps_priority`. */
export interface ShippoServiceLevel {
  name: string;
  token: string;
  terms: string;
}

/** A rate offered for a shipment. */
export interface ShippoRate {
  object_id: string;
  object_created: string;
  object_owner: string;
  shipment: string;
  attributes: ('CHEAPEST' | 'FASTEST' | 'BESTVALUE')[];
  amount: string;
  currency: string;
  amount_local: string;
  currency_local: string;
  provider: string;
  provider_image_75: string;
  servicelevel: ShippoServiceLevel;
  estimated_days: number;
  duration_terms: string;
  carrier_account: string;
  messages: ShippoMessage[];
  test: boolean;
}

/** A note from Shippo or a carrier. */
export interface ShippoMessage {
  source: string;
  code: string;
  text: string;
}

/** A shipment. */
export interface ShippoShipment {
  object_id: string;
  object_created: string;
  object_updated: string;
  object_owner: string;
  status: 'QUEUED' | 'WAITING' | 'SUCCESS' | 'ERROR';
  address_from: ShippoAddress;
  address_to: ShippoAddress;
  parcels: ShippoParcel[];
  shipment_date: string;
  rates: ShippoRate[];
  messages: ShippoMessage[];
  metadata: string;
  test: boolean;
}

/**
 * `POST /transactions/`: buys a label for a `rate` (from a shipment), or in one call for a
 * `shipment` with a `carrier_account` and `servicelevel_token` ("instalabel").
 */
export interface ShippoCreateTransactionParams {
  rate?: string;
  shipment?: ShippoCreateShipmentParams;
  carrier_account?: string;
  servicelevel_token?: string;
  label_file_type?:
    | 'PNG'
    | 'PNG_2.3x7.5'
    | 'PDF'
    | 'PDF_2.3x7.5'
    | 'PDF_4x6'
    | 'PDF_4x8'
    | 'PDF_A4'
    | 'PDF_A5'
    | 'PDF_A6'
    | 'ZPLII';
  metadata?: string;
}

/** A label purchase. `status: 'ERROR'` comes with 201 and the reasons in `messages`. */
export interface ShippoTransaction {
  object_id: string;
  object_state: 'VALID' | 'INVALID';
  object_created: string;
  object_updated: string;
  object_owner: string;
  status:
    'WAITING' | 'QUEUED' | 'SUCCESS' | 'ERROR' | 'REFUNDED' | 'REFUNDPENDING' | 'REFUNDREJECTED';
  rate: string;
  tracking_number: string;
  tracking_status: ShippoTrackingState;
  tracking_url_provider: string;
  eta: string | null;
  label_url: string;
  commercial_invoice_url: string | null;
  messages: ShippoMessage[];
  metadata: string;
  test: boolean;
}

/** Where a parcel is. */
export type ShippoTrackingState =
  'UNKNOWN' | 'PRE_TRANSIT' | 'TRANSIT' | 'DELIVERED' | 'RETURNED' | 'FAILURE';

/** One tracking event. */
export interface ShippoTrackingStatus {
  object_id: string;
  object_created: string;
  object_updated: string;
  status: ShippoTrackingState;
  substatus: { code: string; text: string; action_required: boolean } | null;
  status_details: string;
  status_date: string;
  location: { city: string; state: string; zip: string; country: string } | null;
}

/** `GET /tracks/{carrier}/{tracking_number}` and `POST /tracks/`. */
export interface ShippoTrack {
  carrier: string;
  tracking_number: string;
  address_from: { city: string; state: string; zip: string; country: string } | null;
  address_to: { city: string; state: string; zip: string; country: string } | null;
  eta: string | null;
  original_eta: string | null;
  servicelevel: { token: string; name: string } | null;
  tracking_status: ShippoTrackingStatus | null;
  tracking_history: ShippoTrackingStatus[];
  transaction: string | null;
  metadata: string | null;
  test: boolean;
}

/** `GET /transactions/{transaction_id}`. */
export interface ShippoGetTransactionParams {
  transaction_id: string;
}

/** `GET /tracks/{carrier}/{tracking_number}`. */
export interface ShippoGetTrackingParams {
  /** `usps`, `ups`, `fedex`, `dhl_express`, ...; `shippo` for Shippo's test numbers. */
  carrier: string;
  tracking_number: string;
}

/** `POST /tracks/`: register a tracking webhook. */
export interface ShippoRegisterTrackingParams extends ShippoGetTrackingParams {
  metadata?: string;
}
