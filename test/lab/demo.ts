// `make demo`: the lab with a real home, VM and phone, and what a user sees:
// the website's view of the laptop with and without Aerie, the phone reaching
// home, the kill switch, a plug and the phone on the VM's MQTT broker. Leaves
// nothing behind.
import { ADDR, URLS, waitFor, withLab, type Lab } from './lib/lab.ts';
import { setUpAerie, type Aerie } from './lib/aerie.ts';
import { finished, messagesOf, mqttClient, mqttRun, passwordIn, seenBy, type MqttUser } from './lib/mqtt.ts';

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const say = (s = '') => console.log(s);
const row = (label: string, value: string) => say(`   ${label.padEnd(52)} ${value}`);
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

async function seen(lab: Lab, host: 'lan' | 'phone' | 'internet' | 'router', url: string): Promise<string> {
  const r = await lab.fetch(host, url, { timeoutMs: 2000 });
  if (r.ok) return r.body;
  const why = /timed out/i.test(r.error ?? '') ? 'timed out' : /refused/i.test(r.error ?? '') ? 'refused' : (r.error ?? `HTTP ${r.status}`);
  return `no connection (${why})`;
}

async function demo(lab: Lab): Promise<void> {
  say(bold('Aerie demo: a home (laptop behind a router), the owner\'s VM and a phone, each in its own network namespace'));
  say(`   home LAN 192.0.2.128/25 · router WAN ${ADDR.routerWan.v4} · VM ${ADDR.vm.v4} · website ${ADDR.website.v4}`);
  say();

  const aerie: Aerie = await setUpAerie(lab);
  say(bold('1. Without Aerie'));
  row('the website sees the laptop as (IPv4)', await seen(lab, 'lan', URLS.website4));
  row('the website sees the laptop as (IPv6)', await seen(lab, 'lan', URLS.website6));
  say();

  say(bold('2. Pair the router with the VM'));
  await aerie.startCloud();
  row('aerie-cloud serve on the VM', 'running');
  const code = await aerie.pairingCode();
  row('aerie-cloud pair printed the code', `${code.slice(0, 24)}… (${code.length} characters)`);
  const t0 = Date.now();
  await aerie.pairGateway(code);
  row('aerie-gateway pair CODE --lan-interface lan0', `paired in ${seconds(Date.now() - t0)}`);
  await aerie.startGateway();
  await aerie.waitLaptopThroughVm();
  row('aerie-gateway run: first packet through the tunnel', `${seconds(Date.now() - t0)} after pairing began`);
  say();

  say(bold('3. With Aerie'));
  row('the website sees the laptop as (IPv4)', await seen(lab, 'lan', URLS.website4));
  row('the website sees the laptop as (IPv6)', await seen(lab, 'lan', URLS.website6));
  row('the router\'s own traffic still leaves by its WAN', await seen(lab, 'router', URLS.website4));
  say();

  say(bold('4. A phone away from home'));
  await aerie.addPhone();
  row('aerie-cloud device add phone → wg-quick up', 'tunnel up');
  row(`the phone fetches the laptop at ${ADDR.laptop.v4}:8080`, await seen(lab, 'phone', URLS.laptop4));
  row('the website sees the phone as', await seen(lab, 'phone', URLS.website4));
  row('the internet tries the laptop', await seen(lab, 'internet', URLS.laptop4));
  say();

  say(bold('5. Kill switch: the VM goes away'));
  await lab.setLink('vm', 'eth0', 'down');
  try {
    row('the laptop tries the website (IPv4)', await seen(lab, 'lan', URLS.website4));
    row('the laptop tries the website (IPv6)', await seen(lab, 'lan', URLS.website6));
    row('the router itself still reaches the website', await seen(lab, 'router', URLS.website4));
  } finally {
    await lab.setLink('vm', 'eth0', 'up');
  }
  const back = Date.now();
  await aerie.waitLaptopThroughVm(30_000);
  row('the VM is back; the laptop goes through it again', `after ${seconds(Date.now() - back)}, no restart`);
  say();

  say(bold('6. MQTT for the home, through the tunnel'));
  const plug: MqttUser = { name: 'plug', password: passwordIn((await aerie.cloudCli(['mqtt', 'add-user', 'plug'])).stdout) };
  row('aerie-cloud mqtt add-user plug', 'password printed once, only its hash kept');
  const phone = mqttClient(lab, 'phone', 'phone', ['sub:home/#', 'sub:aerie/gw/home/state', 'wait:2']);
  await seenBy(phone, 'the phone to subscribe', (e) => e.filter((x) => x.event === 'suback').length === 2);
  const sent = await mqttRun(lab, 'lan', 'plug', ['pubr:home/plug/power=on', 'sub:home/lamp/#'], plug);
  row('the plug at home publishes home/plug/power = on', sent.some((e) => e.event === 'puback') ? 'acknowledged (QoS 1, retained)' : 'not acknowledged');
  row('the plug asks for another device: home/lamp/#', sent.find((e) => e.event === 'suback')?.granted?.[0] === 128 ? 'refused (0x80), still connected' : 'granted');
  await finished(phone);
  row('the phone (by its tunnel address) receives', messagesOf(phone).find((m) => m.topic === 'home/plug/power')?.payload ?? 'nothing');
  const state = JSON.parse(messagesOf(phone).find((m) => m.topic === 'aerie/gw/home/state')?.payload ?? '{}') as { tunnel?: string; killSwitch?: boolean };
  row('the router\'s state on aerie/gw/home/state', `tunnel ${state.tunnel ?? '?'}, kill switch ${state.killSwitch ? 'on' : 'off'}`);
  say();

  say(bold('7. aerie-cloud status on the VM'));
  await waitFor('a handshake in status', async () => /s ago/.test((await aerie.cloudCli(['status'])).stdout), { timeoutMs: 10_000 });
  for (const line of (await aerie.cloudCli(['status'])).stdout.trimEnd().split('\n')) say(`   ${line}`);
  say();
  say('Tearing the lab down.');
}

withLab(demo)
  .then(() => say('Done: no namespace, interface or process of the demo is left.'))
  .catch((err: unknown) => {
    console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
