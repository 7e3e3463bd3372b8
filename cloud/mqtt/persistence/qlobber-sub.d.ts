// qlobber ships no types. Only the part this persistence uses: the trie that
// aedes-persistence's own in-memory store matches subscriptions with.
declare module 'qlobber/aedes/qlobber-sub.js' {
  export interface QlobberSubValue {
    clientId: string;
    topic: string;
    qos: number;
    rh: number | undefined;
    rap: boolean | undefined;
    nl: boolean | undefined;
  }
  class QlobberSub {
    constructor(options: { wildcard_one: string; wildcard_some: string; separator: string });
    add(topic: string, value: QlobberSubValue): this;
    remove(topic: string, value: { clientId: string; topic: string }): this;
    match(topic: string): QlobberSubValue[];
  }
  export default QlobberSub;
}
