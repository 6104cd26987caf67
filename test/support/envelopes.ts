// The push envelopes a commercetools Subscription's payload reaches ctbridge in, as each transport delivers it:
// Google Pub/Sub push, AWS EventBridge (API destination), Amazon SNS (HTTPS subscription), Azure Event Grid (Event
// Grid schema) and CloudEvents. Tests wrap a Platform-format payload in each to show it arrives the same.
import { randomUUID } from 'node:crypto';

type Json = Record<string, unknown>;

export type EnvelopeName = 'Pub/Sub' | 'EventBridge' | 'SNS' | 'Event Grid' | 'CloudEvents';

/** What a payload says of itself, for the envelope fields that repeat it (types, subjects, times). */
function describePayload(payload: Json): { kind: 'message' | 'change'; type: string; typeId: string; id: string; time: string } {
  const resource = (payload.resource ?? {}) as { typeId?: string; id?: string };
  const change = payload.notificationType !== 'Message';
  return {
    kind: change ? 'change' : 'message',
    type: String(change ? payload.notificationType : payload.type),
    typeId: resource.typeId ?? 'unknown',
    id: resource.id ?? '',
    time: [payload.modifiedAt, payload.createdAt].find((value): value is string => typeof value === 'string') ?? new Date(0).toISOString(),
  };
}

export const ENVELOPES: Record<EnvelopeName, (payload: Json) => unknown> = {
  'Pub/Sub': (payload) => ({
    message: {
      attributes: { 'content-type': 'application/json' },
      data: Buffer.from(JSON.stringify(payload), 'utf8').toString('base64'),
      messageId: '2070443601311540',
      message_id: '2070443601311540',
      publishTime: '2026-01-01T10:00:01.000Z',
      publish_time: '2026-01-01T10:00:01.000Z',
    },
    subscription: 'projects/my-project/subscriptions/ctbridge-push',
  }),
  EventBridge: (payload) => ({
    version: '0',
    id: randomUUID(),
    'detail-type': describePayload(payload).type,
    source: 'aws.partner/commercetools.com/test-project/ctbridge',
    account: '123456789012',
    time: describePayload(payload).time,
    region: 'eu-west-1',
    resources: [],
    detail: payload,
  }),
  SNS: (payload) => ({
    Type: 'Notification',
    MessageId: randomUUID(),
    TopicArn: 'arn:aws:sns:eu-west-1:123456789012:commercetools',
    Message: JSON.stringify(payload),
    Timestamp: describePayload(payload).time,
    SignatureVersion: '2',
    Signature: 'EXAMPLE',
    SigningCertURL: 'https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-example.pem',
    UnsubscribeURL: 'https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe',
  }),
  // Event Grid delivers an array of events, even of one.
  'Event Grid': (payload) => {
    const about = describePayload(payload);
    return [
      {
        id: randomUUID(),
        topic: '/subscriptions/x/resourceGroups/rg/providers/Microsoft.EventGrid/topics/commercetools',
        subject: `${about.typeId}/${about.id}`,
        eventType: about.type,
        eventTime: about.time,
        data: payload,
        dataVersion: '1',
        metadataVersion: '1',
      },
    ];
  },
  // CloudEventsPayload: type com.commercetools.<typeId>.<message|change>.<type>, the resource id as subject.
  CloudEvents: (payload) => {
    const about = describePayload(payload);
    return {
      specversion: '1.0',
      id: randomUUID(),
      type: `com.commercetools.${about.typeId}.${about.kind}.${about.type}`,
      source: `/test-project/${about.typeId}s`,
      subject: about.id,
      time: about.time,
      data: payload,
    };
  },
};
