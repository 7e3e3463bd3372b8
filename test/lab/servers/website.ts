// The lab's website in the internet namespace: answers with the client address it sees.
import { ADDR, WEBSITE_PORT } from '../lib/topology.ts';
import { serveEcho } from './echo-server.ts';

serveEcho({ addresses: [ADDR.website.v4, ADDR.website.v6], port: WEBSITE_PORT, label: '' });
