// The mappings an Ometria destination gets when it maps nothing itself, so a shop has a working set-up by naming its
// collection, stores and currencies: customers → contacts (with consent from where the settings say commercetools
// keeps it), orders → orders (decimal totals in the order's currency, status through the settings' table, invalid
// when cancelled, addresses without street lines, the discount codes, line items with variant options and
// refunded quantities), products → products with variants, listings per store and currency and their category
// paths as attributes, and order
// messages → custom events. Written as ordinary mapping fields (paths, transforms, JSONata), so
// `ctbridge mapping preview` shows them and a destination can copy and change them (ctbridge.example.yaml).
import type { ConsentSource, OmetriaSettings } from './settings.ts';

type FieldSpec = unknown;
interface Mappings {
  records: Record<string, { source: string; fields: Record<string, FieldSpec> }>;
  events: Record<string, { on: string[]; fields: Record<string, FieldSpec> }>;
}

const json = (value: unknown) => JSON.stringify(value);
/** Money (commercetools centAmount and fractionDigits) as a decimal number in its own currency, in JSONata. */
const decimal = (path: string) => `(${path}.centAmount / $power(10, ${path}.fractionDigits))`;

/** The consent fields (consent.ts reads them) for one channel or the suppression, from where commercetools keeps it. */
function consentFields(name: string, source: ConsentSource | undefined): Record<string, FieldSpec> {
  if (!source) return {};
  if ('customField' in source) {
    return {
      [name]: { path: `custom.fields.${source.customField}`, pipe: [{ default: { value: false } }] },
      [`${name}_at`]: { first: [...(source.timestampField ? [`custom.fields.${source.timestampField}`] : []), 'lastModifiedAt'], pipe: ['iso8601'] },
    };
  }
  if ('customObject' in source) {
    // The custom object keyed by the customer's id (or key, or number) in the container (mapping/references.ts reads
    // them in one query per batch); no object: not opted in, as an unset custom field.
    const { container, keyFrom, field, timestampField } = source.customObject;
    const object = `customObjects.${container}.${keyFrom}.obj`;
    return {
      [name]: { path: `${object}.value.${field}`, pipe: [{ default: { value: false } }] },
      [`${name}_at`]: { first: [...(timestampField ? [`${object}.value.${timestampField}`] : []), `${object}.lastModifiedAt`, 'lastModifiedAt'], pipe: ['iso8601'] },
    };
  }
  return {
    [name]: { jsonata: `customerGroup.obj.key in ${json(source.customerGroups)}` },
    [`${name}_at`]: { path: 'lastModifiedAt', pipe: ['iso8601'] },
  };
}

export function defaultMappings(settings: OmetriaSettings): Mappings {
  const table = settings.orderStatus;
  const locale = settings.locale;
  const localeOf = (store: string) => settings.storeLocales[store] ?? locale;
  // A localized text in a locale, else in the default one (JSONata names with a hyphen are quoted in backticks).
  const text = (path: string, loc: string) => `(${path}.\`${loc}\` ? ${path}.\`${loc}\` : ${path}.\`${locale}\`)`;
  const url = (store: string) => (settings.productUrl ? `$replace($replace(${json(settings.productUrl)}, "{store}", ${json(store)}), "{slug}", $string(${text('masterData.current.slug', localeOf(store))}))` : 'undefined');
  const image = (path: string) => (settings.imageUrl ? `(${path} ? $replace(${json(settings.imageUrl)}, "{url}", ${path}) : undefined)` : path);
  // A price of the variant for a currency: the first without channel, customer group or country.
  const priceOf = (variant: string, currency: string) => `${variant}.prices[value.currencyCode = ${json(currency)} and $not($exists(channel)) and $not($exists(customerGroup)) and $not($exists(country))][0]`;
  const listings = (variant: string) =>
    `[${settings.stores
      .flatMap((store) =>
        settings.currencies.map(
          (currency) =>
            `(${'$p'} := ${priceOf(variant, currency)}; $p ? {"store": ${json(store)}, "currency": ${json(currency)}, "title": ${text('masterData.current.name', localeOf(store))}, "url": ${url(store)}, "price": ${decimal('$p.value')}, "special_price": $p.discounted ? ${decimal('$p.discounted.value')}, "special_price_dt_from": $p.validFrom, "special_price_dt_to": $p.validUntil})`,
        ),
      )
      .join(', ')}]`;
  const attributes = (variant: string) =>
    settings.productAttributes.length === 0
      ? '[]'
      : `[${variant}.attributes[name in ${json(settings.productAttributes)}].{"type": name, "id": $type(value) = "object" ? (value.key ? value.key : $string(value)) : $string(value), "label": $type(value) = "object" ? ($type(value.label) = "string" ? value.label : (value.label ? value.label.${'`'}${locale}${'`'} : value.key)) : $string(value)}]`;

  // The product's categories as attributes of type "category" whose label is the normalised path, the ancestors'
  // names then the category's own joined by " > " ("Women > Shoes > Sneakers"), in the settings' locale (ancestors
  // ordered by depth, their own ancestor count, whatever order the list comes in); the
  // reference expander reads the categories and their ancestors, one query each per batch.
  const categoryPaths = (root: string) =>
    `[${root}masterData.current.categories.obj.{"type": "category", "id": key ? key : id, "label": $join([$sort(ancestors.obj, function($a, $b) { $count($a.ancestors) > $count($b.ancestors) }).${text('name', locale)}, ${text('name', locale)}], " > ")}]`;
  const withCategories = (attributesOf: string, root: string) => `$append(${attributesOf}, ${categoryPaths(root)})`;

  return {
    records: {
      contact: {
        source: 'customer',
        fields: {
          email: { path: 'email', pipe: ['trim', 'lower'] },
          firstname: 'firstName',
          lastname: 'lastName',
          date_of_birth: 'dateOfBirth',
          phone_number: { first: ['addresses[?id=defaultShippingAddressId].mobile', 'addresses[?id=defaultShippingAddressId].phone', 'addresses[?id=defaultBillingAddressId].phone'], pipe: ['e164'] },
          country_id: { first: ['addresses[?id=defaultShippingAddressId].country', 'addresses[?id=defaultBillingAddressId].country'] },
          store_ids: { jsonata: `$count(stores) > 0 ? [stores.key] : ${json(settings.stores)}` },
          properties: { jsonata: '{"customer_number": customerNumber, "customer_group": customerGroup.obj.key}' },
          ...consentFields('consent_email', settings.consent.email),
          ...consentFields('consent_sms', settings.consent.sms),
          ...consentFields('suppressed', settings.consent.suppression),
        },
      },
      order: {
        source: 'order',
        fields: {
          timestamp: { path: 'createdAt', pipe: ['iso8601'] },
          grand_total: { jsonata: decimal('totalPrice') },
          subtotal: { jsonata: `$round($sum(lineItems.${decimal('totalPrice')}), totalPrice.fractionDigits)` },
          discount: { jsonata: `$round($sum(lineItems.(${decimal('price.value')} * quantity)) - $sum(lineItems.${decimal('totalPrice')}), totalPrice.fractionDigits)` },
          shipping: { jsonata: `shippingInfo.price ? ${decimal('shippingInfo.price')} : 0` },
          tax: { jsonata: `taxedPrice.totalTax ? ${decimal('taxedPrice.totalTax')} : 0` },
          currency: 'totalPrice.currencyCode',
          status: { jsonata: `($t := ${json(table)}; orderState = "Cancelled" ? $lookup($t, "Cancelled") : ($s := $lookup($t, shipmentState); $s ? $s : $lookup($t, orderState)))` },
          is_valid: { jsonata: 'orderState != "Cancelled"' },
          store: 'store.key',
          channel: { value: 'online' },
          web_id: 'orderNumber',
          shipping_method: 'shippingInfo.shippingMethodName',
          payment_method: 'paymentState',
          // Ometria has one coupon_code per order: every code the order was placed with, comma-separated.
          coupon_code: { path: 'discountCodes[*].discountCode.obj.code', pipe: [{ join: { separator: ',' } }, { default: { value: null } }] },
          billing_address: { jsonata: 'billingAddress ? {"city": billingAddress.city, "state": billingAddress.state, "country_code": billingAddress.country, "postcode": billingAddress.postalCode}' },
          shipping_address: { jsonata: 'shippingAddress ? {"city": shippingAddress.city, "state": shippingAddress.state, "country_code": shippingAddress.country, "postcode": shippingAddress.postalCode}' },
          customer: { jsonata: '{"email": customerEmail, "firstname": billingAddress.firstName, "lastname": billingAddress.lastName}' },
          lineitems: {
            jsonata: `[lineItems.($li := $; {"product_id": productId, "variant_id": $string(variant.id), "sku": variant.sku, "quantity": quantity, "unit_price": ${decimal('price.value')}, "total": ${decimal('totalPrice')}, "is_on_sale": $exists(price.discounted), "quantity_refunded": $sum($$.returnInfo.items[lineItemId = $li.id and paymentState = "Refunded"].quantity), "variant_options": [variant.attributes[$type(value) = "string" or $type(value) = "object"].{"id": name, "type": name, "label": $type(value) = "object" ? ($type(value.label) = "string" ? value.label : (value.label ? value.label.${'`'}${locale}${'`'} : value.key)) : value}]})]`,
          },
        },
      },
      product: {
        source: 'product',
        fields: {
          title: { jsonata: text('masterData.current.name', locale) },
          sku: 'masterData.current.masterVariant.sku',
          url: { jsonata: settings.stores[0] === undefined ? 'undefined' : url(settings.stores[0]) },
          image_url: { jsonata: image('masterData.current.masterVariant.images[0].url') },
          is_active: 'masterData.published',
          stores: { value: settings.stores },
          attributes: { jsonata: withCategories(attributes('masterData.current.masterVariant'), '') },
          listings: { jsonata: listings('masterData.current.masterVariant') },
          variants: {
            jsonata: `[masterData.current.variants.($v := $; {"id": sku ? sku : $string(id), "sku": sku, "title": ${text('$$.masterData.current.name', locale)}, "image_url": ${image('images[0].url')}, "is_active": $$.masterData.published, "stores": ${json(settings.stores)}, "attributes": ${withCategories(attributes('$v'), '$$.')}, "listings": ${listings('$v').replaceAll('masterData.current', () => '$$.masterData.current')}})]`,
          },
        },
      },
    },
    events: {
      order_placed: {
        on: ['OrderCreated'],
        fields: { event_type: { value: 'order_placed' }, order_id: 'order.id', order_number: 'order.orderNumber', total: { jsonata: decimal('order.totalPrice') }, currency: 'order.totalPrice.currencyCode', email: 'order.customerEmail' },
      },
      order_state: {
        on: ['OrderStateChanged'],
        fields: { event_type: { jsonata: 'orderState = "Cancelled" ? "order_cancelled" : "order_state_changed"' }, order_id: 'resource.id', state: 'orderState', previous_state: 'oldOrderState' },
      },
      order_payment: {
        on: ['OrderPaymentStateChanged'],
        fields: { event_type: { jsonata: 'paymentState = "Refunded" ? "order_refunded" : "order_payment_changed"' }, order_id: 'resource.id', payment_state: 'paymentState' },
      },
      order_returned: {
        on: ['ReturnInfoAdded', 'ReturnInfoSet'],
        fields: { event_type: { value: 'order_returned' }, order_id: 'resource.id', items: { jsonata: '$sum(returnInfo.items.quantity)' } },
      },
    },
  };
}
