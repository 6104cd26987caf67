// The classes of personal data a destination's PII policy speaks about, and how a mapped field is put in one:
// by an explicit `pii:` on the field, else by its own name, else by the last name of each path it reads
// (`shippingAddress.firstName` is a name, `addresses[0].country` is not personal). Compiled with the mapping.
import { z } from 'zod';

export const PII_CLASSES = ['email', 'phone', 'name', 'address', 'dateOfBirth', 'ip', 'payment'] as const;
export type PiiClass = (typeof PII_CLASSES)[number];

/** What a destination receives of a class: as is, masked, an HMAC, a reversible vault token, or nothing. */
export const PII_TREATMENTS = ['pass', 'mask', 'hash', 'tokenize', 'drop'] as const;
export type PiiTreatment = (typeof PII_TREATMENTS)[number];

export type PiiPolicy = Partial<Record<PiiClass, PiiTreatment>>;

export const piiPolicySchema = z
  .strictObject(Object.fromEntries(PII_CLASSES.map((name) => [name, z.enum(PII_TREATMENTS).optional()])) as Record<PiiClass, z.ZodOptional<z.ZodEnum<{ [K in PiiTreatment]: K }>>>)
  .describe('what this destination receives of each class of personal data (default: pass; payment data is blocked whatever this says)');

// Lower-cased names; checked in this order, so `billingEmail` is an email before anything else.
const NAMES: Array<[PiiClass, ReadonlySet<string>]> = [
  ['payment', new Set(['iban', 'bic', 'cardnumber', 'cardholder', 'cardholdername', 'pan', 'cvv', 'cvc', 'securitycode', 'accountnumber'])],
  ['email', new Set(['email', 'customeremail', 'emailaddress', 'mail'])],
  ['phone', new Set(['phone', 'mobile', 'fax', 'phonenumber', 'mobilephone', 'telephone'])],
  ['dateOfBirth', new Set(['dateofbirth', 'birthday', 'birthdate', 'dob'])],
  ['ip', new Set(['ip', 'ipaddress', 'clientip', 'remoteaddress'])],
  ['address', new Set(['address', 'addresses', 'shippingaddress', 'billingaddress', 'itemshippingaddresses', 'streetname', 'streetnumber', 'street', 'additionalstreetinfo', 'additionaladdressinfo', 'postalcode', 'zip', 'zipcode', 'pobox', 'building', 'apartment', 'city'])],
  ['name', new Set(['firstname', 'lastname', 'middlename', 'fullname', 'salutation', 'nickname', 'surname', 'givenname', 'familyname'])],
];

const CLASS_OF_NAME = new Map<string, PiiClass>();
for (const [piiClass, names] of NAMES) for (const name of names) if (!CLASS_OF_NAME.has(name)) CLASS_OF_NAME.set(name, piiClass);

/** The class of one name, or undefined when it does not name personal data. */
export function classOfName(name: string): PiiClass | undefined {
  return CLASS_OF_NAME.get(name.toLowerCase());
}

/**
 * A mapped field's class: `explicit` (`pii: none` says it is not personal), else its own name's, else the first
 * class (in the order above) among the names its paths end in.
 */
export function classOfField(fieldName: string, sourceLeaves: readonly string[], explicit?: PiiClass | 'none'): PiiClass | undefined {
  if (explicit !== undefined) return explicit === 'none' ? undefined : explicit;
  const own = classOfName(fieldName);
  if (own !== undefined) return own;
  const found = new Set(sourceLeaves.map(classOfName).filter((c) => c !== undefined));
  return NAMES.map(([piiClass]) => piiClass).find((piiClass) => found.has(piiClass));
}
