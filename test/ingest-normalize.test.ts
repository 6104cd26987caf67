// Ingest normalization: every official commercetools payload, in every transport envelope ctbridge accepts,
// becomes the same notification; transport control messages are recognised; anything else is reported, never thrown.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import type { CommercetoolsNotification, NormalizedItem } from '../src/ingest/message.ts';
import { normalizeBody } from '../src/ingest/normalize.ts';
import { ENVELOPES } from './support/envelopes.ts';

const reference = join(import.meta.dirname, '../spec/commercetools');
type Json = Record<string, unknown>;

function load(path: string): Json {
  return JSON.parse(readFileSync(join(reference, path), 'utf8')) as Json;
}

function only(items: NormalizedItem[]): NormalizedItem {
  expect(items).toHaveLength(1);
  return items[0]!;
}

function notificationOf(item: NormalizedItem): CommercetoolsNotification {
  if (item.kind !== 'notification') throw new Error(`expected a notification, got ${JSON.stringify(item)}`);
  return item.notification;
}

function single(body: unknown, headers: Record<string, string | string[] | undefined> = {}): CommercetoolsNotification {
  return notificationOf(only(normalizeBody(body, headers)));
}

function unrecognisedReason(body: unknown, headers: Record<string, string | string[] | undefined> = {}): string {
  const item = only(normalizeBody(body, headers));
  if (item.kind !== 'unrecognised') throw new Error(`expected unrecognised, got ${JSON.stringify(item)}`);
  return item.unrecognised.reason;
}

const base64 = (value: unknown): string => Buffer.from(JSON.stringify(value), 'utf8').toString('base64');

const messagePayload = load('subscription/message-payload.example.json');
const cloudEvent = load('subscription/cloudevents-payload.example.json');
const resourceCreated = load('subscription/resource-created-payload.example.json');
const resourceUpdated = load('subscription/resource-updated-payload.example.json');
const resourceDeleted = load('subscription/resource-deleted-payload.example.json');
const erasedCustomer = load('subscription/resource-deleted-data-erasure.example.json');
const eventPayload = load('subscription/event-payload.example.json');
const payloadNotIncluded = load('subscription/payload-not-included.example.json');

const expectedMessage = {
  dedupeKey: '<message_id>',
  notificationType: 'Message',
  type: 'CustomerLastNameSet',
  projectKey: '<project_key>',
  resource: { typeId: 'customer', id: '<customer_id>' },
  resourceVersion: 2,
  carriedResource: undefined,
  deleted: false,
  payloadNotIncluded: false,
  occurredAt: Date.parse('2022-10-25T13:30:09.760Z'),
};

/** What each official example in spec/commercetools/subscription must normalize to. */
const officialExpectations: Record<string, (n: CommercetoolsNotification) => void> = {
  'message-payload.example.json': (n) => {
    expect(n).toMatchObject(expectedMessage);
    expect(n.payload).toEqual(messagePayload);
  },
  'resource-created-payload.example.json': (n) =>
    expect(n).toMatchObject({
      dedupeKey: '<product_id>:1:ResourceCreated',
      notificationType: 'ResourceCreated',
      type: 'ResourceCreated',
      resource: { typeId: 'product', id: '<product_id>' },
      resourceVersion: 1,
      deleted: false,
      occurredAt: Date.parse('2022-10-25T13:23:05.384Z'),
    }),
  'resource-updated-payload.example.json': (n) =>
    expect(n).toMatchObject({
      dedupeKey: '<product-id>:3:ResourceUpdated',
      notificationType: 'ResourceUpdated',
      resource: { typeId: 'product', id: '<product-id>' },
      resourceVersion: 3,
      deleted: false,
      occurredAt: Date.parse('2022-10-25T13:23:40.577Z'),
    }),
  'resource-deleted-payload.example.json': (n) =>
    expect(n).toMatchObject({
      dedupeKey: '<product-id>:3:ResourceDeleted',
      notificationType: 'ResourceDeleted',
      resource: { typeId: 'product', id: '<product-id>' },
      resourceVersion: 3,
      deleted: true,
      dataErasure: false,
      occurredAt: Date.parse('2022-10-25T13:23:50.113Z'),
    }),
  'resource-deleted-data-erasure.example.json': (n) =>
    expect(n).toMatchObject({
      dedupeKey: '<customer-id>:3:ResourceDeleted',
      notificationType: 'ResourceDeleted',
      resource: { typeId: 'customer', id: '<customer-id>' },
      resourceVersion: 3,
      deleted: true,
      dataErasure: true,
    }),
  'event-payload.example.json': (n) =>
    expect(n).toMatchObject({
      dedupeKey: '3b364ca2-cbe5-42b4-a85a-37d4e57d659e',
      notificationType: 'Event',
      type: 'ImportContainerCreated',
      resource: undefined,
      resourceVersion: undefined,
      carriedResource: undefined,
      deleted: false,
      occurredAt: Date.parse('2025-03-26T17:28:20.397Z'),
    }),
  'cloudevents-payload.example.json': (n) => {
    expect(n).toMatchObject({
      dedupeKey: '81ee6da8-5bc2-471b-9159-89bac735a45d',
      notificationType: 'Message',
      type: 'ProductPublished',
      projectKey: '<project-key>',
      resource: { typeId: 'product', id: 'b32d1013-cd25-4cb4-95ab-99c494531d73' },
      resourceVersion: 2,
      // ProductPublished carries a projection, but only creation Messages count as carrying the resource.
      carriedResource: undefined,
      deleted: false,
      occurredAt: Date.parse('2022-06-17T08:41:58.066Z'),
    });
    expect(n.payload).toEqual(cloudEvent.data);
  },
  'payload-not-included.example.json': (n) =>
    expect(n).toMatchObject({ dedupeKey: '<message_id>', type: 'ProductPublished', payloadNotIncluded: true, carriedResource: undefined }),
};

/** payload-not-included.example.json is the content of a Message's payloadNotIncluded field. */
function messageWithoutPayload(): Json {
  const { type: _type, lastName: _lastName, ...rest } = messagePayload;
  return { ...rest, payloadNotIncluded };
}

describe('official examples', () => {
  const files = readdirSync(join(reference, 'subscription')).filter((f) => f.endsWith('.json'));

  test('every example in the reference folder has an expectation', () => {
    expect(files.sort()).toEqual(Object.keys(officialExpectations).sort());
  });

  test.each(files)('%s normalizes to a notification', (file) => {
    const body = file === 'payload-not-included.example.json' ? messageWithoutPayload() : load(`subscription/${file}`);
    officialExpectations[file]!(single(body));
  });

  test('a payloadNotIncluded Message keeps its own type when it has one', () => {
    const n = single({ ...messagePayload, payloadNotIncluded });
    expect(n).toMatchObject({ type: 'CustomerLastNameSet', payloadNotIncluded: true });
  });

  test('a Message from the Messages API (no notificationType) is a Message', () => {
    expect(single(load('resources/message.example.json'))).toMatchObject({
      dedupeKey: '2723ca8f-283c-4add-90bc-0978d195ed3c',
      notificationType: 'Message',
      type: 'PaymentStatusInterfaceCodeSet',
      resource: { typeId: 'payment', id: 'e57c8183-eb2b-4bf3-acf1-f8a7846689f8' },
      resourceVersion: 5,
      projectKey: undefined,
      occurredAt: 1,
    });
  });

  test('a page of Messages and its results array both normalize to its Messages', () => {
    const page = load('resources/messages.example.json');
    for (const body of [page, page.results]) {
      const keys = normalizeBody(body, {}).map((item) => notificationOf(item).dedupeKey);
      expect(keys).toEqual(['2723ca8f-283c-4add-90bc-0978d195ed3c']);
    }
  });
});

describe('Messages carrying the resource', () => {
  const customer = load('resources/customer.example.json');
  const order = load('resources/order.example.json');
  const projection = load('resources/product-projection.example.json');

  function creationMessage(type: string, typeId: string, property: string, resource: Json, resourceVersion: number): Json {
    return {
      notificationType: 'Message',
      projectKey: 'shop',
      id: `msg-${type}`,
      version: 1,
      sequenceNumber: 1,
      resource: { typeId, id: resource.id },
      resourceVersion,
      resourceUserProvidedIdentifiers: {},
      type,
      [property]: resource,
      createdAt: '2024-05-01T10:00:00.000Z',
      lastModifiedAt: '2024-05-01T10:00:00.000Z',
      createdBy: { clientId: 'x', isPlatformClient: false },
    };
  }

  test.each([
    ['CustomerCreated', 'customer', 'customer', customer],
    ['OrderCreated', 'order', 'order', order],
    ['ProductCreated', 'product', 'productProjection', projection],
  ])('%s carries its %s', (type, typeId, property, resource) => {
    const n = single(creationMessage(type, typeId, property, resource, resource.version as number));
    expect(n.carriedResource).toEqual(resource);
    expect(n.resource).toEqual({ typeId, id: resource.id });
    expect(n.resourceVersion).toBe(resource.version);
  });

  test('a carried object at another version than resourceVersion is not the resource state', () => {
    expect(single(creationMessage('CustomerCreated', 'customer', 'customer', customer, 2)).carriedResource).toBeUndefined();
  });

  test('an object with the same id in a non-creation Message is not treated as carried', () => {
    expect(single(creationMessage('CustomerEmailChanged', 'customer', 'customer', customer, 1)).carriedResource).toBeUndefined();
  });

  test('payloadNotIncluded wins over anything that looks carried', () => {
    const body = { ...creationMessage('CustomerCreated', 'customer', 'customer', customer, 1), payloadNotIncluded };
    expect(single(body)).toMatchObject({ payloadNotIncluded: true, carriedResource: undefined });
  });

  test('*Deleted Messages are deletions', () => {
    const body = { ...messagePayload, id: 'm-del', type: 'CustomerDeleted', erasure: false };
    expect(single(body)).toMatchObject({ deleted: true, type: 'CustomerDeleted', dataErasure: false });
  });

  test('a *Deleted Message that carries dataErasure: true asks for erasure; no other Message does', () => {
    expect(single({ ...messagePayload, id: 'm-del', type: 'CustomerDeleted', dataErasure: true }).dataErasure).toBe(true);
    expect(single({ ...messagePayload, id: 'm-set', type: 'CustomerLastNameSet', dataErasure: true }).dataErasure).toBe(false);
    expect(single({ ...messagePayload, id: 'm-del', type: 'CustomerDeleted', dataErasure: 'true' }).dataErasure).toBe(false);
  });
});

describe('Events', () => {
  test('an Event whose data names a resource clearly maps it', () => {
    const body = { ...eventPayload, type: 'SomethingHappened', resourceType: 'checkout', data: { typeId: 'order', id: 'o-1', version: 4 } };
    expect(single(body)).toMatchObject({ resource: { typeId: 'order', id: 'o-1' }, resourceVersion: 4, dedupeKey: eventPayload.id });
  });
});

describe('subscription test notification', () => {
  test('ResourceCreated of a subscription is a control message, not a notification', () => {
    const body = { notificationType: 'ResourceCreated', projectKey: 'shop', resource: { typeId: 'subscription', id: 'sub-1' }, version: 1, modifiedAt: '2024-05-01T10:00:00.000Z' };
    expect(only(normalizeBody(body, {}))).toEqual({ kind: 'control', control: { kind: 'subscription-test', dedupeKey: 'sub-1:1:ResourceCreated' } });
  });

  test('it is recognised inside an envelope too', () => {
    const test = { notificationType: 'ResourceCreated', projectKey: 'shop', resource: { typeId: 'subscription', id: 'sub-2' }, version: 1 };
    const item = only(normalizeBody({ message: { data: base64(test), messageId: '1' }, subscription: 'projects/p/subscriptions/s' }, {}));
    expect(item).toMatchObject({ kind: 'control', control: { kind: 'subscription-test' } });
  });
});

describe('envelopes', () => {
  test('CloudEvents with data_base64', () => {
    const { data, ...rest } = cloudEvent;
    expect(single({ ...rest, data_base64: base64(data) }).dedupeKey).toBe('81ee6da8-5bc2-471b-9159-89bac735a45d');
  });

  test('CloudEvents time is the occurrence time when the payload has none', () => {
    const { createdAt: _c, lastModifiedAt: _l, ...data } = cloudEvent.data as Json;
    expect(single({ ...cloudEvent, data }).occurredAt).toBe(Date.parse('2022-06-17T08:41:58.066Z'));
  });

  test('Google Pub/Sub push envelope around each Platform payload', () => {
    for (const payload of [messagePayload, resourceUpdated, eventPayload, cloudEvent]) {
      const envelope = {
        message: {
          attributes: { 'ce-type': 'x' },
          data: base64(payload),
          messageId: '2070443601311540',
          message_id: '2070443601311540',
          publishTime: '2024-05-01T10:00:01.000Z',
          publish_time: '2024-05-01T10:00:01.000Z',
        },
        subscription: 'projects/my-project/subscriptions/ctbridge-push',
      };
      const expected = single(payload);
      expect(single(envelope)).toEqual(expected);
    }
  });

  test('Pub/Sub push without a wrapper is the payload itself, with attributes in headers', () => {
    const n = single(messagePayload, { 'x-goog-pubsub-message-id': '1', 'x-goog-pubsub-subscription-name': 'projects/p/subscriptions/s' });
    expect(n).toMatchObject(expectedMessage);
  });

  test('Pub/Sub publishTime stands in for a missing createdAt', () => {
    const { createdAt: _c, ...payload } = messagePayload;
    const n = single({ message: { data: base64(payload), messageId: '1', publishTime: '2024-05-01T10:00:01.000Z' }, subscription: 's' });
    expect(n.occurredAt).toBe(Date.parse('2024-05-01T10:00:01.000Z'));
  });

  test('AWS EventBridge envelope', () => {
    const envelope = {
      version: '0',
      id: 'b2a9f2b5-43a4-d9b5-a2f4-2b61cdd4c6a8',
      'detail-type': 'CustomerLastNameSet',
      source: 'aws.partner/commercetools.com/my-project/ctbridge',
      account: '123456789012',
      time: '2022-10-25T13:30:10Z',
      region: 'eu-west-1',
      resources: [],
      detail: messagePayload,
    };
    expect(single(envelope)).toMatchObject(expectedMessage);
  });

  function snsNotification(message: unknown): Json {
    return {
      Type: 'Notification',
      MessageId: '22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324',
      TopicArn: 'arn:aws:sns:eu-west-1:123456789012:commercetools',
      Message: typeof message === 'string' ? message : JSON.stringify(message),
      Timestamp: '2022-10-25T13:30:10.000Z',
      SignatureVersion: '1',
      Signature: 'EXAMPLE',
      SigningCertURL: 'https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-x.pem',
      UnsubscribeURL: 'https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe',
    };
  }

  test('AWS SNS Notification with a JSON Message', () => {
    expect(single(snsNotification(resourceDeleted), { 'x-amz-sns-message-type': 'Notification' })).toMatchObject({
      dedupeKey: '<product-id>:3:ResourceDeleted',
      deleted: true,
    });
  });

  test('AWS SNS raw message delivery: the header is present but the body is the payload', () => {
    expect(single(messagePayload, { 'x-amz-sns-message-type': 'Notification' })).toMatchObject(expectedMessage);
    expect(single(cloudEvent, { 'x-amz-sns-message-type': 'Notification' }).type).toBe('ProductPublished');
  });

  const confirmation = {
    Type: 'SubscriptionConfirmation',
    MessageId: '165545c9-2a5c-472c-8df2-7ff2be2b3b1b',
    Token: '2336412f37f',
    TopicArn: 'arn:aws:sns:eu-west-1:123456789012:commercetools',
    Message: 'You have chosen to subscribe to the topic arn:aws:sns:eu-west-1:123456789012:commercetools.',
    SubscribeURL: 'https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn&Token=2336412f37f',
    Timestamp: '2024-05-01T10:00:00.000Z',
    SignatureVersion: '1',
    Signature: 'EXAMPLE',
    SigningCertURL: 'https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-x.pem',
  };

  test('AWS SNS SubscriptionConfirmation is a control message with what is needed to confirm it', () => {
    expect(only(normalizeBody(confirmation, {}))).toEqual({
      kind: 'control',
      control: {
        kind: 'sns-subscription-confirmation',
        topicArn: confirmation.TopicArn,
        subscribeUrl: confirmation.SubscribeURL,
        messageId: confirmation.MessageId,
      },
    });
  });

  test('AWS SNS SubscriptionConfirmation detected through x-amz-sns-message-type', () => {
    const { Type: _type, ...body } = confirmation;
    const item = only(normalizeBody(body, { 'X-Amz-Sns-Message-Type': 'SubscriptionConfirmation' }));
    expect(item).toMatchObject({ kind: 'control', control: { kind: 'sns-subscription-confirmation', topicArn: confirmation.TopicArn } });
  });

  test('Azure Event Grid, CloudEvents schema, single and in an array', () => {
    expect(single(cloudEvent).dedupeKey).toBe('81ee6da8-5bc2-471b-9159-89bac735a45d');
    const items = normalizeBody([cloudEvent, { ...cloudEvent, id: 'ce-2', data: resourceUpdated }], {});
    expect(items.map((item) => notificationOf(item).dedupeKey)).toEqual(['81ee6da8-5bc2-471b-9159-89bac735a45d', '<product-id>:3:ResourceUpdated']);
  });

  test('Azure Event Grid, Event Grid schema', () => {
    const event = {
      id: 'eg-1',
      topic: '/subscriptions/x/resourceGroups/rg/providers/Microsoft.EventGrid/topics/commercetools',
      subject: 'customer/<customer_id>',
      eventType: 'CustomerLastNameSet',
      eventTime: '2022-10-25T13:30:10Z',
      data: messagePayload,
      dataVersion: '1',
      metadataVersion: '1',
    };
    expect(single([event])).toMatchObject(expectedMessage);
  });

  test('Azure Event Grid validation handshake, as Event Grid delivers it (an array)', () => {
    const body = [
      {
        id: '2d1781af-3a4c-4d7c-bd0c-e34b19da4e66',
        topic: '/subscriptions/xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx',
        subject: '',
        data: { validationCode: '512d38b6-c7b8-40c8-89fe-f46f9e9622b6', validationUrl: 'https://rp-eastus2.eventgrid.azure.net/x' },
        eventType: 'Microsoft.EventGrid.SubscriptionValidationEvent',
        eventTime: '2018-01-25T22:12:19.4556811Z',
        metadataVersion: '1',
        dataVersion: '1',
      },
    ];
    expect(normalizeBody(body, {})).toEqual([
      { kind: 'control', control: { kind: 'eventgrid-validation', validationCode: '512d38b6-c7b8-40c8-89fe-f46f9e9622b6' } },
    ]);
  });

  test.each(Object.keys(ENVELOPES) as Array<keyof typeof ENVELOPES>)('a ResourceDeleted with dataErasure keeps it in the %s envelope', (name) => {
    const n = single(ENVELOPES[name](erasedCustomer));
    expect(n).toMatchObject({ dedupeKey: '<customer-id>:3:ResourceDeleted', resource: { typeId: 'customer', id: '<customer-id>' }, deleted: true, dataErasure: true });
    expect(n.payload).toEqual(erasedCustomer);
    expect(single(ENVELOPES[name](resourceDeleted)).dataErasure).toBe(false);
  });

  test('a Message or Event id with the prefix of ctbridge\'s own dedupe keys is refused, so none poses as an erasure asked for', () => {
    expect(unrecognisedReason({ ...messagePayload, id: 'ctbridge:erasure:customer:<customer_id>' })).toMatch(/^Message id starts with "ctbridge:"/);
    expect(unrecognisedReason({ ...eventPayload, id: 'ctbridge:x' })).toMatch(/^Event id starts with "ctbridge:"/);
  });

  test('a ResourceDeleted whose dataErasure is anything but true asks for no erasure', () => {
    for (const value of [false, 'true', 1, null]) expect(single({ ...erasedCustomer, dataErasure: value }).dataErasure).toBe(false);
  });

  test('nested envelopes unwrap recursively: SNS around a CloudEvent', () => {
    expect(single(snsNotification(cloudEvent)).resourceVersion).toBe(2);
  });
});

describe('arrays', () => {
  test('a JSON array of any of the formats is flattened, in order, bad parts reported in place', () => {
    const items = normalizeBody(
      [
        messagePayload,
        { message: { data: base64([resourceCreated, resourceUpdated]), messageId: '9' }, subscription: 's' },
        { hello: 'world' },
        { 'detail-type': 'x', source: 'y', detail: eventPayload },
      ],
      {},
    );
    expect(items.map((item) => (item.kind === 'notification' ? item.notification.dedupeKey : item.kind))).toEqual([
      '<message_id>',
      '<product_id>:1:ResourceCreated',
      '<product-id>:3:ResourceUpdated',
      'unrecognised',
      '3b364ca2-cbe5-42b4-a85a-37d4e57d659e',
    ]);
    expect(items[3]).toMatchObject({ unrecognised: { reason: expect.stringContaining('[2]') as unknown, body: { hello: 'world' } } });
  });
});

describe('unrecognised input', () => {
  test.each<[string, unknown, string]>([
    ['a JSON number', 42, 'expected a JSON object or array, got a number'],
    ['null', null, 'got null'],
    ['a string', 'hello', 'got a string'],
    ['an empty array', [], 'empty array'],
    ['an unknown object', { hello: 'world' }, 'not a commercetools notification or a known envelope'],
    ['an unknown notificationType', { ...messagePayload, notificationType: 'Gossip' }, 'unknown notificationType "Gossip"'],
    ['a Message without resource.id', { ...messagePayload, resource: { typeId: 'customer' } }, 'Message has no resource.id'],
    ['a Message without id', { ...messagePayload, id: '' }, 'Message has no id'],
    ['a Message without type', { ...messagePayload, type: undefined }, 'Message has no type'],
    ['a Message with a fractional resourceVersion', { ...messagePayload, resourceVersion: 1.5 }, 'resourceVersion is not a non-negative integer'],
    ['a ResourceUpdated without version', { ...resourceUpdated, version: undefined }, 'ResourceUpdated notification has no version'],
    ['a ResourceCreated with resource as a string', { ...resourceCreated, resource: 'product' }, 'resource is a string'],
    ['an Event without id', { ...eventPayload, id: 7 }, 'Event has no id'],
    ['Pub/Sub with bad base64', { message: { data: '%%%not base64%%%', messageId: '1' }, subscription: 's' }, 'message.data is not valid base64'],
    ['Pub/Sub with base64 of non-JSON', { message: { data: Buffer.from('hello').toString('base64'), messageId: '1' } }, 'is not JSON'],
    ['Pub/Sub with base64 of invalid UTF-8', { message: { data: Buffer.from([0xff, 0xfe, 0x7b]).toString('base64'), messageId: '1' } }, 'UTF-8'],
    ['Pub/Sub without data', { message: { attributes: {}, messageId: '1' }, subscription: 's' }, 'Pub/Sub push message has no data'],
    ['SNS with a non-JSON Message', { Type: 'Notification', MessageId: '1', TopicArn: 'arn', Message: 'hi there' }, 'SNS Message is not JSON'],
    ['SNS UnsubscribeConfirmation', { Type: 'UnsubscribeConfirmation', MessageId: '1', TopicArn: 'arn' }, 'UnsubscribeConfirmation'],
    ['a CloudEvent without data', { specversion: '1.0', id: '1', type: 't', source: 's' }, 'CloudEvent has neither data nor data_base64'],
    ['an EventBridge event without detail', { 'detail-type': 'x', source: 'y' }, 'EventBridge event has no detail'],
    ['Event Grid validation without a code', { eventType: 'Microsoft.EventGrid.SubscriptionValidationEvent', data: {} }, 'no data.validationCode'],
  ])('%s', (_name, body, reason) => {
    expect(unrecognisedReason(body)).toContain(reason);
  });

  test('the reason names where in the envelope chain the problem is', () => {
    const body = { message: { data: base64({ specversion: '1.0', data: { ...messagePayload, resource: {} } }), messageId: '1' } };
    expect(unrecognisedReason(body)).toBe('Pub/Sub message.data > CloudEvent data: Message has no resource.id (expected a non-empty string)');
  });

  test('deep nesting is bounded, not a stack overflow', () => {
    const deep = JSON.parse('['.repeat(200_000) + ']'.repeat(200_000)) as unknown;
    expect(unrecognisedReason(deep)).toContain('nested deeper than');
    let envelope: unknown = messagePayload;
    for (let i = 0; i < 50; i++) envelope = { 'detail-type': 't', source: 's', detail: envelope };
    expect(unrecognisedReason(envelope)).toContain('nested deeper than');
  });

  test('keys that name Object.prototype members are plain data', () => {
    const body = JSON.parse('{"__proto__": {"notificationType": "Message"}, "constructor": {"message": {"data": "e30="}}}') as unknown;
    expect(unrecognisedReason(body)).toContain('not a commercetools notification');
  });
});

describe('properties', () => {
  function checkTotal(body: unknown, headers: Record<string, string | string[] | undefined> = {}): void {
    const items = normalizeBody(body, headers);
    expect(items.length).toBeGreaterThan(0);
    for (const item of items) {
      expect(['notification', 'control', 'unrecognised']).toContain(item.kind);
      if (item.kind === 'unrecognised') expect(item.unrecognised.reason.length).toBeGreaterThan(0);
      if (item.kind === 'notification') expect(item.notification.dedupeKey.length).toBeGreaterThan(0);
    }
  }

  test('never throws on arbitrary JSON', () => {
    fc.assert(fc.property(fc.jsonValue(), (value) => checkTotal(value)), { numRuns: 500 });
  });

  const anything = fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.string(), fc.constantFrom('Message', 'ResourceCreated', 'ResourceDeleted', 'Event', 'Notification', 'SubscriptionConfirmation'));
  const envelopeKeys = [
    'notificationType', 'id', 'type', 'resource', 'version', 'resourceVersion', 'payloadNotIncluded', 'createdAt', 'modifiedAt', 'data',
    'specversion', 'data_base64', 'time', 'message', 'subscription', 'detail-type', 'detail', 'source', 'Type', 'Message', 'TopicArn',
    'MessageId', 'SubscribeURL', 'eventType', 'eventTime', 'dataVersion', 'results', 'count', 'customer', 'sequenceNumber',
  ] as const;
  const envelopeLike: fc.Arbitrary<unknown> = fc.letrec<{ node: unknown }>((tie) => ({
    node: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      anything,
      fc.dictionary(fc.constantFrom(...envelopeKeys), fc.oneof(anything, tie('node')), { maxKeys: 8 }),
      fc.record({ typeId: fc.oneof(fc.constant('subscription'), fc.string()), id: fc.oneof(fc.string(), anything) }, { requiredKeys: [] }),
      fc.record({ data: tie('node').map((v) => Buffer.from(JSON.stringify(v) ?? 'x').toString('base64')), messageId: fc.string() }).map((m) => ({ message: m })),
      fc.array(tie('node'), { maxLength: 3 }),
    ),
  })).node;

  test('never throws on objects shaped like envelopes with random fields', () => {
    fc.assert(
      fc.property(envelopeLike, fc.constantFrom<Record<string, string | string[] | undefined>>({}, { 'x-amz-sns-message-type': 'SubscriptionConfirmation' }, { 'x-amz-sns-message-type': ['Notification', 'x'] }), (value, headers) =>
        checkTotal(value, headers),
      ),
      { numRuns: 1000 },
    );
  });

  test('every official payload survives any envelope chain it is put in', () => {
    const wrap = fc.constantFrom<(v: unknown) => unknown>(
      (v) => ({ message: { data: base64(v), messageId: '1' }, subscription: 's' }),
      (v) => ({ 'detail-type': 't', source: 's', detail: v }),
      (v) => ({ Type: 'Notification', MessageId: '1', TopicArn: 'arn', Message: JSON.stringify(v) }),
      (v) => ({ specversion: '1.0', id: '1', type: 't', source: 's', data: v }),
      (v) => [v],
    );
    fc.assert(
      fc.property(fc.constantFrom(messagePayload, resourceCreated, resourceUpdated, resourceDeleted, eventPayload), fc.array(wrap, { maxLength: 4 }), (payload, wrappers) => {
        const body = wrappers.reduce<unknown>((inner, w) => w(inner), payload);
        expect(single(body)).toEqual(single(payload));
      }),
    );
  });
});
