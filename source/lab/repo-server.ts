/**
 * The lab's offline apt repository over HTTP: a static, read-only file server bound to the
 * lab bridge's address only (pitfall 9: nothing of the lab listens on 0.0.0.0).
 * Run as its own detached process by `lab up`:  node repo-server.js <dir> <address> <port>
 */
import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { join, normalize } from 'node:path';

const [dir, address, portText] = process.argv.slice(2);
if (!dir || !address || !portText) {
  process.stderr.write('usage: repo-server.js <dir> <address> <port>\n');
  process.exit(2);
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://lab');
  const rel = normalize(decodeURIComponent(url.pathname)).replace(/^(\.\.(\/|$))+/, '');
  const file = join(dir, rel);
  if ((req.method !== 'GET' && req.method !== 'HEAD') || !file.startsWith(dir)) {
    res.writeHead(405).end();
    return;
  }
  let size: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new Error('not a file');
    size = st.size;
  } catch {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { 'content-length': size, 'content-type': 'application/octet-stream' });
  if (req.method === 'HEAD') res.end();
  else createReadStream(file).pipe(res);
});

server.on('error', (e) => {
  process.stderr.write(`repo-server: ${e.message}\n`);
  process.exit(1);
});
server.listen(Number(portText), address, () => {
  process.stdout.write(`repo-server: serving ${dir} on http://${address}:${portText}/\n`);
});
process.on('SIGTERM', () => process.exit(0));
