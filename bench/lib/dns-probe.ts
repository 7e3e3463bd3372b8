// A small DNS client run as its own process inside the namespace of the
// server under test (the benchmark itself runs outside it):
//
//   node dns-probe.ts '{"mode":"wait","server":"…","port":53,"name":"…","expect":"0.0.0.0","timeoutMs":60000}'
//     prints "ready", then asks every few ms until an A answer holds `expect`,
//     then prints {"answeredAt": <unix ms, fractional>} (null on timeout).
//   node dns-probe.ts '{"mode":"ask","server":"…","port":53,"questions":[{"name":"…","type":"A"}]}'
//     prints the answer to each question as JSON.
import { createSocket, type Socket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { decodeAnswer, encodeQuery, type Answer, type QType } from './dns-wire.ts';

interface WaitRequest {
  mode: 'wait';
  server: string;
  port: number;
  name: string;
  expect: string;
  timeoutMs: number;
  intervalMs?: number;
}
interface AskRequest {
  mode: 'ask';
  server: string;
  port: number;
  questions: { name: string; type: QType }[];
}
export interface AskResult {
  name: string;
  type: QType;
  answer: Omit<Answer, 'id'> | null;
}

const now = () => performance.timeOrigin + performance.now();

function open(server: string): Promise<Socket> {
  const sock = createSocket(server.includes(':') ? 'udp6' : 'udp4');
  return new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(0, () => resolve(sock));
  });
}

async function wait(r: WaitRequest): Promise<void> {
  const sock = await open(r.server);
  const intervalMs = r.intervalMs ?? 5;
  const deadline = now() + r.timeoutMs;
  let id = 0;
  let last = 'no answer';
  let timer: NodeJS.Timeout | undefined;
  const answered = new Promise<number | null>((resolve) => {
    let done = false;
    const finish = (at: number | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(at);
    };
    sock.on('message', (msg) => {
      const at = now();
      try {
        const a = decodeAnswer(msg);
        last = `rcode ${a.rcode}, addresses [${a.addresses.join(', ')}]`;
        if (a.addresses.includes(r.expect)) finish(at);
      } catch (e) {
        last = `undecodable answer: ${(e as Error).message}`;
      }
    });
    const tick = () => {
      if (done) return;
      if (now() > deadline) return finish(null);
      id = (id + 1) & 0xffff;
      sock.send(encodeQuery(id, r.name, 'A'), r.port, r.server, () => {});
      timer = setTimeout(tick, intervalMs);
    };
    tick();
  });
  process.stdout.write('ready\n');
  const at = await answered;
  sock.close();
  process.stdout.write(`${JSON.stringify({ answeredAt: at, last })}\n`);
  process.exitCode = at === null ? 1 : 0;
}

async function ask(r: AskRequest): Promise<void> {
  const sock = await open(r.server);
  const results: AskResult[] = [];
  let id = Math.floor(Math.random() * 0xffff);
  for (const q of r.questions) {
    let answer: Answer | null = null;
    for (let attempt = 0; attempt < 3 && !answer; attempt++) {
      id = (id + 1) & 0xffff;
      const want = id;
      answer = await new Promise<Answer | null>((resolve) => {
        const timer = setTimeout(() => done(null), 1_000);
        const onMessage = (msg: Buffer) => {
          try {
            const a = decodeAnswer(msg);
            if (a.id === want) done(a);
          } catch {
            // not ours to judge here: wait for a decodable answer or the timeout
          }
        };
        const done = (a: Answer | null) => {
          clearTimeout(timer);
          sock.off('message', onMessage);
          resolve(a);
        };
        sock.on('message', onMessage);
        sock.send(encodeQuery(want, q.name, q.type), r.port, r.server);
      });
    }
    results.push({ name: q.name, type: q.type, answer: answer && { rcode: answer.rcode, addresses: answer.addresses, ttls: answer.ttls } });
  }
  sock.close();
  process.stdout.write(`${JSON.stringify(results)}\n`);
}

const request = JSON.parse(process.argv[2] ?? '{}') as WaitRequest | AskRequest;
if (request.mode === 'wait') await wait(request);
else if (request.mode === 'ask') await ask(request);
else {
  process.stderr.write('usage: dns-probe.ts JSON (mode "wait" or "ask")\n');
  process.exitCode = 2;
}
