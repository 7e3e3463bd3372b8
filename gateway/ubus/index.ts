// The public API of the ubus client (contract A).
export type {
  UbusArgType,
  UbusCaller,
  UbusClient,
  UbusMethod,
  UbusObjectInfo,
  UbusRegistered,
  UbusTable,
  UbusValue,
} from './types.ts';
export { UbusError, UBUS_STATUS } from './error.ts';
export { connectUbus, DEFAULT_SOCKETS, type ConnectUbusOptions } from './client.ts';
export { decodeTable, encodeTable } from './blobmsg.ts';
