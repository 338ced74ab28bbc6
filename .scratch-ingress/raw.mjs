import http from 'node:http';
http.createServer((req, res) => { const b = '{"status":"ok"}'; res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': b.length }); res.end(b); }).listen(9778, '127.0.0.1');
