// `node --import ./test/daemon/helpers/register.mjs firmware/cli.ts ...`
import { register } from 'node:module';
register('./ts-hooks.mjs', import.meta.url);
