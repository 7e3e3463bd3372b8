import { checkFirewallDesired, type CheckedFirewall, type Lists } from './check.ts';
import type { FirewallCounters, FirewallDesired } from './desired.ts';
import { fromTunnelRules, forwardRules, refusedRules } from './render-forward.ts';
import { egressRules, egressSets } from './render-egress.ts';
import { inputRules } from './render-input.ts';
import { masqueradeRules, prerouteRules, publishRules } from './render-nat.ts';
import { FAMILIES } from './render-rule.ts';

export type { FirewallDesired } from './desired.ts';

/** Our one table; nothing else in the ruleset is ours. */
export const FIREWALL_FAMILY = 'inet';
export const FIREWALL_TABLE = 'aerie';

/** Named counters per subject; parseCounters reads them back by these prefixes. */
export const SENT_PREFIX = 'sent-';
export const DROPPED_PREFIX = 'dropped-';

const block = (head: string, lines: string[]) => [`\t${head} {`, ...lines.map((l) => `\t\t${l}`), '\t}'].join('\n');
const elements = (items: string[]) => (items.length > 0 ? [`elements = { ${items.join(', ')} }`] : []);

/** One interval set per family for each address list; empty sets are declared too, so rules never change shape. */
function sets(c: CheckedFirewall): string[] {
  const all: [string, Lists, string][] = [
    ['overlay', c.overlay, 'overlay prefixes: the peers'],
    ['homes', c.homes, "gateways' home prefixes"],
    ['inside', c.inside, 'overlay and home prefixes: sources that live behind the tunnel'],
    ['vm', c.vm, "the VM's own tunnel addresses"],
    ['owners', c.groups.owners, "owner peers' addresses"],
    ['lan_members', c.groups.lanMembers, "addresses of members with LAN access"],
    ['blocked', c.groups.blocked, 'subjects whose internet is blocked'],
    ['isolated', c.groups.isolated, 'isolated subjects: DNS and MQTT on the VM only'],
  ];
  const type = (name: string) => `type ${name.endsWith('4') ? 'ipv4_addr' : 'ipv6_addr'}`;
  return [
    ...all.flatMap(([name, lists, why]) =>
      FAMILIES.map((f) =>
        block(`set ${name}${f.n}`, [`type ${f.ip === 'ip' ? 'ipv4_addr' : 'ipv6_addr'}`, 'flags interval', `comment "${why}"`, ...elements(f.pick(lists))]),
      ),
    ),
    ...egressSets(c).map(([name, flags, why, items]) => block(`set ${name}`, [type(name), `flags ${flags}`, `comment "${why}"`, ...elements(items)])),
  ];
}

/** Values to start the per-subject counters from (so a new ruleset does not zero them). */
export type SubjectCounts = FirewallCounters['subjects'];

const start = (packets = 0, bytes = 0) =>
  packets > 0 || bytes > 0 ? [`packets ${Math.floor(packets) || 0} bytes ${Math.floor(bytes) || 0}`] : [];

/** Per subject, a named counter for what it sends and one for what is refused, found by source address. */
function counters(c: CheckedFirewall, from: SubjectCounts): string[] {
  const objects = c.subjects.flatMap((s) => {
    const was = from[s.name];
    return [
      block(`counter ${SENT_PREFIX}${s.name}`, [`comment "what ${s.name} sends through the VM"`, ...start(was?.outPackets, was?.outBytes)]),
      block(`counter ${DROPPED_PREFIX}${s.name}`, [`comment "what the firewall refused from ${s.name}"`, ...start(was?.droppedPackets, was?.droppedBytes)]),
    ];
  });
  const maps = [SENT_PREFIX, DROPPED_PREFIX].flatMap((prefix) =>
    FAMILIES.map((f) => {
      const items = c.subjects.flatMap((s) => f.pick(s.addresses).map((a) => `${a} : "${prefix}${s.name}"`));
      const type = `type ${f.ip === 'ip' ? 'ipv4_addr' : 'ipv6_addr'} : counter`;
      return block(`map ${prefix.slice(0, -1)}${f.n}`, [type, 'flags interval', ...elements(items)]);
    }),
  );
  return [...objects, ...maps];
}

/**
 * The whole `table inet aerie` as nft text, every rule with a counter and a
 * comment saying why. Same input, same text: lists are sorted in the check.
 * `counts` (apply only) carries each subject's counters over into the new table.
 */
export function renderFirewall(d: FirewallDesired, counts: SubjectCounts = {}): string {
  const c = checkFirewallDesired(d);
  const chains: [string, string | null, string[]][] = [
    ['prerouting', 'type filter hook prerouting priority raw; policy accept;', prerouteRules(c)],
    ['publish', 'type nat hook prerouting priority dstnat; policy accept;', publishRules(c)],
    ['input', 'type filter hook input priority filter; policy drop;', inputRules(c)],
    ['forward', 'type filter hook forward priority filter; policy accept;', forwardRules(c)],
    ['from-tunnel', null, fromTunnelRules(c)],
    ['refused', null, refusedRules()],
    ['postrouting', 'type nat hook postrouting priority srcnat; policy accept;', [...egressRules(c), ...masqueradeRules(c)]],
  ];
  const body = chains
    // A base chain without rules would still be called for every packet: leave it out.
    .filter(([, , rules]) => rules.length > 0)
    .map(([name, head, rules]) => block(`chain ${name}`, head ? [head, ...rules] : rules));
  return [
    '# Written whole by aerie-cloud on every change; edits here are overwritten.',
    `table ${FIREWALL_FAMILY} ${FIREWALL_TABLE} {`,
    [...sets(c), ...counters(c, counts), ...body].join('\n\n'),
    '}',
    '',
  ].join('\n');
}
