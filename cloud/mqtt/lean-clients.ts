import bl from 'bl';
import * as mqttPacket from 'mqtt-packet';

// Memory aedes spends per process and per connection that the broker does
// not need (figures: bench/mqtt.ts). Both rely on aedes 1.2 and mqtt-packet 9
// internals, so each checks what it changes and leaves anything else alone.

/**
 * mqtt-packet's writer keeps a 2-byte Buffer for each of the 65,536 numbers
 * it may write (packet ids, lengths), built on the first packet sent: 6.8 MB
 * of heap objects, about 15 MB of RSS. Writing a number allocates 2 bytes
 * from Node's buffer pool instead. Process-wide: the daemon is the only
 * mqtt-packet writer in its process.
 */
export function dropPacketNumberCache(): void {
  mqttPacket.writeToStream.cacheNumbers = false;
}

/**
 * Each aedes client's packet parser buffers input in a BufferListStream: a
 * full Duplex stream (two stream states, their buffers and listeners, about
 * 0.9 KB) of which the parser uses only the plain list methods. A plain
 * BufferList has the same ones. Swapped before the first byte is parsed.
 */
export function slimParser(stream: object): void {
  const parser = (stream as { client?: { _parser?: { _list?: { length?: number; _readableState?: unknown } } } }).client?._parser;
  const list = parser?._list;
  if (!parser || !list || list.length !== 0 || list._readableState === undefined) return;
  parser._list = new bl.BufferList() as unknown as typeof list;
}
