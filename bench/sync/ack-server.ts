// The benchmark's CDP: a node:http server in its own process (so its CPU does not count against the sync)
// that answers /v1/batch at once and counts the identifies it was sent. Talks to the parent over IPC.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzip } from 'node:zlib';

let events = 0;
let requests = 0;
let maxBodyBytes = 0;
let maxEventsPerRequest = 0;
const NEEDLE = Buffer.from('"type":"identify"');

function count(buf: Buffer): number {
  let n = 0;
  for (let i = buf.indexOf(NEEDLE); i >= 0; i = buf.indexOf(NEEDLE, i + NEEDLE.length)) n++;
  return n;
}

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const wire = Buffer.concat(chunks);
    const done = (body: Buffer): void => {
      const n = count(body);
      events += n;
      requests++;
      maxBodyBytes = Math.max(maxBodyBytes, body.length);
      maxEventsPerRequest = Math.max(maxEventsPerRequest, n);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"success":true}');
    };
    if (req.headers['content-encoding'] === 'gzip') {
      gunzip(wire, (err, body) => {
        if (err) {
          res.writeHead(400);
          res.end();
          return;
        }
        done(body);
      });
    } else done(wire);
  });
});
server.keepAliveTimeout = 60_000;

server.listen(0, '127.0.0.1', () => {
  process.send?.({ port: (server.address() as AddressInfo).port });
});

process.on('message', (m: { cmd: string }) => {
  if (m.cmd === 'stats') process.send?.({ events, requests, maxBodyBytes, maxEventsPerRequest });
  if (m.cmd === 'reset') {
    events = 0;
    requests = 0;
    maxBodyBytes = 0;
    maxEventsPerRequest = 0;
    process.send?.({ reset: true });
  }
  if (m.cmd === 'stop') server.close(() => process.exit(0));
});
