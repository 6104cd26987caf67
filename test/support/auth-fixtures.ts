// Credentials for the ingest authentication tests, made at test time: an RSA key pair with a self-signed X.509
// certificate (as SNS signs with), SNS messages signed with it, a local server handing the certificate out, and
// Google-style OIDC tokens. Node can sign but not issue certificates, so the certificate is built here in DER
// (a minimal v3 certificate: serial, issuer = subject, validity, the public key), with no openssl and no private
// key committed.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSign, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { stringToSign } from '../../src/ingest/sns-auth.ts';

function der(tag: number, ...parts: Buffer[]): Buffer {
  const content = Buffer.concat(parts);
  const length = content.length;
  const header = length < 0x80 ? [tag, length] : length < 0x100 ? [tag, 0x81, length] : [tag, 0x82, length >> 8, length & 0xff];
  return Buffer.concat([Buffer.from(header), content]);
}

function oid(dotted: string): Buffer {
  const [first = 0, second = 0, ...rest] = dotted.split('.').map(Number);
  const bytes = [first * 40 + second];
  for (const arc of rest) {
    const groups = [arc & 0x7f];
    for (let value = arc >> 7; value > 0; value >>= 7) groups.unshift((value & 0x7f) | 0x80);
    bytes.push(...groups);
  }
  return der(0x06, Buffer.from(bytes));
}

const utcTime = (date: Date) => der(0x17, Buffer.from(`${date.toISOString().slice(2, 19).replace(/[-:T]/g, '')}Z`, 'ascii'));
const SHA256_WITH_RSA = der(0x30, oid('1.2.840.113549.1.1.11'), Buffer.from([0x05, 0x00]));

/** A self-signed certificate for `commonName` with the key pair, valid between the two dates (UTCTime: 1950-2049). */
export function selfSignedCertificate(options: { commonName: string; validFrom?: Date; validTo?: Date } = { commonName: 'sns.amazonaws.com' }): { pem: string; privateKey: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const name = der(0x30, der(0x31, der(0x30, oid('2.5.4.3'), der(0x0c, Buffer.from(options.commonName, 'utf8')))));
  const validity = der(0x30, utcTime(options.validFrom ?? new Date('2020-01-01T00:00:00Z')), utcTime(options.validTo ?? new Date('2049-01-01T00:00:00Z')));
  const tbs = der(
    0x30,
    der(0xa0, der(0x02, Buffer.from([0x02]))), // version 3
    der(0x02, Buffer.from([0x01, 0x23, 0x45])), // serial
    SHA256_WITH_RSA,
    name,
    validity,
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
  );
  const certificate = der(0x30, tbs, SHA256_WITH_RSA, der(0x03, Buffer.from([0x00]), sign('sha256', tbs, privateKey)));
  const base64 = certificate.toString('base64').replace(/.{64}/g, '$&\n');
  return { pem: `-----BEGIN CERTIFICATE-----\n${base64}\n-----END CERTIFICATE-----\n`, privateKey };
}

export const SNS_CERT_URL = 'https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0000000000000000000000000000000.pem';
export const SNS_TOPIC = 'arn:aws:sns:eu-west-1:123456789012:commercetools';

/** An SNS message of `type` carrying `message`, signed as SNS does (SignatureVersion 1: SHA1, 2: SHA256). */
export function snsMessage(
  privateKey: KeyObject,
  options: { type?: 'Notification' | 'SubscriptionConfirmation' | 'UnsubscribeConfirmation'; message?: string; version?: '1' | '2'; certUrl?: string; topic?: string; subject?: string; messageId?: string } = {},
): Record<string, string> {
  const type = options.type ?? 'Notification';
  const fields: Record<string, string> = {
    Type: type,
    MessageId: options.messageId ?? crypto.randomUUID(),
    TopicArn: options.topic ?? SNS_TOPIC,
    Message: options.message ?? '{}',
    Timestamp: new Date().toISOString(),
    SignatureVersion: options.version ?? '2',
    SigningCertURL: options.certUrl ?? SNS_CERT_URL,
    ...(options.subject !== undefined && { Subject: options.subject }),
  };
  if (type === 'Notification') {
    fields.UnsubscribeURL = `https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=${fields.TopicArn}:0000`;
  } else {
    fields.Token = '2336412f37fb687f5d51e6e2425c464de12884c3';
    fields.SubscribeURL = `https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=${fields.TopicArn}&Token=${fields.Token}`;
  }
  fields.Signature = createSign(fields.SignatureVersion === '1' ? 'RSA-SHA1' : 'RSA-SHA256').update(stringToSign(fields), 'utf8').sign(privateKey, 'base64');
  return fields;
}

/**
 * A local HTTP server handing out `pem` at any path, and a certificate fetcher for the authenticator that reads
 * the SNS URL's path from it (the SNS host check has already passed when the fetcher is called), recording the URLs.
 */
export async function startCertificateServer(pem: string): Promise<{ fetchCertificate: (url: string) => Promise<Response>; fetched: string[]; close: () => Promise<void> }> {
  const server: Server = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'application/x-pem-file' }).end(pem);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const fetched: string[] = [];
  return {
    fetched,
    fetchCertificate(url) {
      fetched.push(url);
      return fetch(`${base}${new URL(url).pathname}`);
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** An RSA key for Google-style OIDC tokens and its JWKS entry. */
export function oidcKey(kid = 'key-1'): { kid: string; privateKey: KeyObject; jwk: Record<string, unknown> } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { kid, privateKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' } };
}

/** An RS256 JWT of `claims`, signed with `key`. */
export function mintJwt(key: { kid: string; privateKey: KeyObject }, claims: Record<string, unknown>): string {
  const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const input = `${b64url({ alg: 'RS256', kid: key.kid, typ: 'JWT' })}.${b64url(claims)}`;
  return `${input}.${sign('RSA-SHA256', Buffer.from(input), key.privateKey).toString('base64url')}`;
}
