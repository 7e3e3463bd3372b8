// The laptop's web server in the home LAN: answers "laptop <client address>".
import { ADDR, LAPTOP_PORT } from '../lib/topology.ts';
import { serveEcho } from './echo-server.ts';

serveEcho({ addresses: [ADDR.laptop.v4, ADDR.laptop.v6], port: LAPTOP_PORT, label: 'laptop' });
