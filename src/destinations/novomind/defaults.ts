// The mappings a novomind destination gets when it maps nothing itself: customers as novomind customers (by their
// commercetools id as externalId, with customer number, name, e-mail, phone in E.164, locale and store), and the
// order's status changes an agent wants beside a ticket — shipment (state changes, parcels with tracking numbers),
// cancellation, refund (the order's payment state becoming CreditOwed) and return — as one status note each, with
// a kind, the state and the one before, and a line of text. Ordinary mapping fields, so `ctbridge mapping
// preview` shows them and a destination can copy and change them (ctbridge.example.yaml).

/** The commercetools messages that become status notes. */
export const STATUS_MESSAGES = [
  'OrderShipmentStateChanged',
  'ParcelAddedToDelivery',
  'OrderStateChanged',
  'OrderPaymentStateChanged',
  'ReturnInfoAdded',
  'ReturnInfoSet',
  'OrderReturnShipmentStateChanged',
];

const KIND = `(
  type = "OrderShipmentStateChanged" or type = "ParcelAddedToDelivery" ? "shipment" :
  type = "OrderStateChanged" ? (orderState = "Cancelled" ? "cancellation" : "order") :
  type = "OrderPaymentStateChanged" ? (paymentState = "CreditOwed" ? "refund" : "payment") :
  "return"
)`;

const STATE = `(
  type = "OrderShipmentStateChanged" ? shipmentState :
  type = "ParcelAddedToDelivery" ? "ParcelAdded" :
  type = "OrderStateChanged" ? orderState :
  type = "OrderPaymentStateChanged" ? paymentState :
  type = "OrderReturnShipmentStateChanged" ? returnShipmentState :
  "ReturnRegistered"
)`;

const PREVIOUS = `(type = "OrderShipmentStateChanged" ? oldShipmentState : type = "OrderStateChanged" ? oldOrderState : type = "OrderPaymentStateChanged" ? oldPaymentState : undefined)`;

export function novomindDefaultMappings(): { records: Record<string, unknown>; events: Record<string, unknown> } {
  return {
    records: {
      customer: {
        source: 'customer',
        fields: {
          externalId: 'id',
          customerNumber: 'customerNumber',
          email: { path: 'email', pipe: ['trim', 'lower'] },
          firstName: 'firstName',
          lastName: 'lastName',
          phone: { first: ['addresses[?id=defaultShippingAddressId].mobile', 'addresses[?id=defaultShippingAddressId].phone', 'addresses[?id=defaultBillingAddressId].phone'], pipe: ['e164'] },
          locale: 'locale',
          store: 'stores[0].key',
        },
      },
    },
    events: {
      order_status: {
        on: STATUS_MESSAGES,
        fields: {
          kind: { jsonata: KIND },
          orderId: 'resource.id',
          orderNumber: { first: ['resourceUserProvidedIdentifiers.orderNumber', 'resource.id'] },
          state: { jsonata: STATE },
          previousState: { jsonata: PREVIOUS },
          trackingNumber: 'parcel.trackingData.trackingId',
          carrier: 'parcel.trackingData.carrier',
          returnedQuantity: { jsonata: 'returnInfo ? $sum(returnInfo.items.quantity)' },
          changedAt: { path: 'createdAt', pipe: ['iso8601'] },
          text: { jsonata: `${KIND} & ": " & ${STATE} & (${PREVIOUS} ? " (was " & ${PREVIOUS} & ")" : "")` },
        },
      },
    },
  };
}
