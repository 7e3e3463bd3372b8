// The OpenWrt adapter's public surface.
export { createOpenwrtPlatform, DEFAULT_FORWARD_FILE, type OpenwrtPlatformOptions } from './openwrt.ts';
export { readDesiredFromUci } from './readback.ts';
export { readSystemView, type SystemView } from './system-view.ts';
export { listenInterfaceEvents, parseInterfaceEvent, type InterfaceEvent } from './interface-events.ts';
