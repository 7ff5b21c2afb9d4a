// SigV4 for `execute-api`, as an AWS SDK signs a call to the @connections API: what the
// local gateway checks (local/src/sigv4.rs). The key comes from the environment the Rust
// test sets: SIGV4_ACCESS_KEY_ID, SIGV4_SECRET_ACCESS_KEY, SIGV4_REGION.
import { createHash, createHmac } from 'node:crypto';

const sha256 = (data) => createHash('sha256').update(data).digest('hex');
const hmac = (key, data) => createHmac('sha256', key).update(data).digest();

// Every byte but A-Za-z0-9-._~ (and '/') as %XX: the path is encoded once more, as the
// SDKs do for every service but S3.
const encode = (text) => Array.from(Buffer.from(text, 'utf8'))
  .map((b) => {
    const c = String.fromCharCode(b);
    return /[A-Za-z0-9\-._~/]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  })
  .join('');

/** `fetch(url, {method})` signed with the key in the environment (no body, no query). */
export async function signedFetch(url, method) {
  const accessKeyId = process.env.SIGV4_ACCESS_KEY_ID;
  const secret = process.env.SIGV4_SECRET_ACCESS_KEY;
  const region = process.env.SIGV4_REGION;
  if (!accessKeyId || !secret || !region) throw new Error('SIGV4_* not set by the test');
  const { host, pathname } = new URL(url);
  const amzDate = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const day = amzDate.slice(0, 8);
  const scope = `${day}/${region}/execute-api/aws4_request`;
  const payloadHash = sha256('');
  const canonical = [
    method, encode(pathname), '',
    `host:${host}`, `x-amz-date:${amzDate}`, '',
    'host;x-amz-date', payloadHash,
  ].join('\n');
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
  let key = hmac(`AWS4${secret}`, day);
  for (const part of [region, 'execute-api', 'aws4_request']) key = hmac(key, part);
  const signature = createHmac('sha256', key).update(toSign).digest('hex');
  return fetch(url, {
    method,
    headers: {
      'x-amz-date': amzDate,
      authorization: `AWS4-HMAC-SHA256 Credential=${accessKeyId}/${scope}, `
        + `SignedHeaders=host;x-amz-date, Signature=${signature}`,
    },
  });
}
