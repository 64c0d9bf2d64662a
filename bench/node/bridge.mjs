// The Node.js bridge a user would write instead of hgd (benchmark baseline c).
//
// MQTT.js 5 + the fetch built into Node 20 (undici, keep-alive), with at most
// --inflight POSTs at once (default 64): without a bound, a burst opens one
// connection per message. The bound is enforced through MQTT.js's
// handleMessage hook: the next packet is not read, and this one not
// acknowledged, until the message has a slot. It checks the publisher's
// signature like hgd (HMAC, time window, nonce replay), builds the same
// compact body in the same field order and sends the same headers.
//
// Durability, as this kind of bridge naturally offers: nothing on disk, and
// a message is acknowledged when its POST starts, so a crash loses up to
// --inflight messages; a failed POST is logged and dropped (no retries).
//
// Prints "ready" on stdout once subscribed. NODE_EXTRA_CA_CERTS supplies the
// receiver's CA for https URLs.
import crypto from 'node:crypto';
import mqtt from 'mqtt';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, v, i, a) => (i % 2 === 0 ? [...acc, [v.replace(/^--/, ''), a[i + 1]]] : acc), []));
const port = Number(args.port);
const url = args.url;
const secret = Buffer.from(args.secret, 'utf8');
const maxInflight = Number(args.inflight || 64);
const root = args['topic-root'] || 'hg/v1';
const keys = new Map(JSON.parse(await (await import('node:fs/promises')).readFile(args.keys, 'utf8'))
  .keys.map((k) => [k.id, Buffer.from(k.secret, 'utf8')]));
const WINDOW = 300;
const FIELDS = ['callerNumber', 'callSid', 'reason', 'summary', 'agentSessionId'];
const seen = new Map();
const stats = { posted: 0, failed: 0, rejected: 0 };

let inflight = 0;
const waiting = [];

function release() {
  inflight--;
  const next = waiting.shift();
  if (next) next();
}

function reject(why) {
  stats.rejected++;
  console.error('rejected: ' + why);
}

async function post(packet) {
  const up = {};
  for (const [k, v] of Object.entries(packet.properties?.userProperties || {})) up[k] = Array.isArray(v) ? v[0] : v;
  const { 'hg-key': key, 'hg-ts': ts, 'hg-nonce': nonce, 'hg-sig': sig } = up;
  if (!keys.has(key) || !/^[0-9]+$/.test(ts || '') || !nonce || !sig) return reject('missing or malformed properties');
  const mac = crypto.createHmac('sha256', keys.get(key))
    .update(`hg1\n${packet.topic}\n${ts}\n${nonce}\n`).update(packet.payload).digest('hex');
  const now = Date.now() / 1000;
  if (mac.length !== sig.length || !crypto.timingSafeEqual(Buffer.from(mac), Buffer.from(sig)) ||
      Math.abs(now - Number(ts)) > WINDOW) return reject('bad signature or stale');
  if (seen.has(nonce)) return reject('nonce replayed');
  seen.set(nonce, now + 2 * WINDOW);
  if (seen.size > 200000) for (const [n, exp] of seen) if (exp < now) seen.delete(n);
  let esc;
  try { esc = JSON.parse(packet.payload.toString('utf8')); } catch { return reject('not JSON'); }
  if (!esc || typeof esc !== 'object' || Array.isArray(esc)) return reject('not an object');
  const eventId = esc.eventId || crypto.randomUUID();
  const body = { eventId, eventType: 'escalation', timestamp: new Date().toISOString() };
  for (const f of FIELDS) body[f] = esc[f] ?? null;
  const raw = Buffer.from(JSON.stringify(body), 'utf8');
  const wts = String(Math.floor(now));
  const headers = {
    'Content-Type': 'application/json',
    'User-Agent': 'nodebridge/1',
    'X-HelpGenie-Event-Id': eventId,
    'X-HelpGenie-Attempt': '1',
    'X-HelpGenie-Signature': crypto.createHmac('sha256', secret).update(raw).digest('hex'),
    'webhook-id': eventId,
    'webhook-timestamp': wts,
    'webhook-signature': 'v1,' + crypto.createHmac('sha256', secret).update(`${eventId}.${wts}.`).update(raw).digest('base64'),
  };
  try {
    const r = await fetch(url, { method: 'POST', body: raw, headers, redirect: 'manual',
      signal: AbortSignal.timeout(15000) });
    await r.arrayBuffer();
    if (r.status >= 200 && r.status < 300) stats.posted++; else stats.failed++;
  } catch (e) {
    stats.failed++;
    console.error('post failed: ' + e);
  }
}

const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, {
  protocolVersion: 5, clean: true, clientId: `nodebridge-${process.pid}`, keepalive: 60, reconnectPeriod: 1000,
});
client.handleMessage = (packet, done) => {
  const start = () => {
    inflight++;
    post(packet).finally(release);
    done();
  };
  if (inflight < maxInflight) start(); else waiting.push(start);
};
client.on('connect', () => {
  client.subscribe(`${root}/escalation/+`, { qos: 1 }, (err) => {
    if (err) { console.error('subscribe failed: ' + err); process.exit(1); }
    console.log('ready');
  });
});
client.on('error', (e) => console.error('mqtt: ' + e));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => { console.error(JSON.stringify(stats)); process.exit(0); });
