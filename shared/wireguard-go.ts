/**
 * The argv that starts wireguard-go for interface `name` where the kernel has
 * no WireGuard. It forks into the background and lives until the interface is
 * deleted. With LOG_LEVEL set its child keeps our output pipes open; with
 * WG_PROCESS_FOREGROUND set it does not fork at all: either would stall the caller.
 */
export function wireguardGoArgv(name: string, program = 'wireguard-go'): string[] {
  return ['env', '-u', 'LOG_LEVEL', '-u', 'WG_PROCESS_FOREGROUND', program, name];
}
