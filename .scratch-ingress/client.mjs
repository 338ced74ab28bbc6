import http from 'node:http';
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
async function run(method, path, body, ms) {
  let n = 0; const end = Date.now() + ms; let errs = 0;
  const one = () => new Promise((res) => {
    const req = http.request({ host: '127.0.0.1', port: 9777, method, path, agent, headers: body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {} }, (r) => { r.resume(); r.on('end', () => { if (r.statusCode >= 300) errs++; res(); }); });
    req.end(body);
  });
  await Promise.all(Array.from({ length: 64 }, async () => { while (Date.now() < end) { await one(); n++; } }));
  console.log(method, path, Math.round(n / (ms / 1000)), 'req/s', 'errors', errs);
}
await run('GET', '/health', undefined, 3000);
await run('POST', '/G/g', '"hi"', 3000);
await run('POST', '/G/g/send', '"hi"', 3000);
await run('GET', '/health', undefined, 3000);
