// `node run.mjs OUT VERB [--config F] [--catalog F] [--state F]`: runs a verb of the component
// that `jco transpile` wrote to OUT, calling its `source` exports directly (like the wasmtime host)
// and printing the verb's result message; everything else arrives through sink.js.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { error } from './sink.js';

const [outDir, verb, ...flags] = process.argv.slice(2);
const { source } = await import(resolve(outDir, 'instagram_connector.js'));
const file = (flag) => (flags.includes(flag) ? readFileSync(flags[flags.indexOf(flag) + 1], 'utf8') : undefined);
const print = (message) => process.stdout.write(JSON.stringify(message) + '\n');

try {
  if (verb === 'spec') {
    print({ type: 'SPEC', spec: JSON.parse(source.spec()) });
  } else if (verb === 'check') {
    let status = { status: 'SUCCEEDED' };
    try { source.check(file('--config')); } catch (e) { status = { status: 'FAILED', message: e.payload?.message ?? String(e) }; }
    print({ type: 'CONNECTION_STATUS', connectionStatus: status });
  } else if (verb === 'discover') {
    print({ type: 'CATALOG', catalog: JSON.parse(source.discover(file('--config'))) });
  } else if (verb === 'read') {
    // A host's operator settings; these are the defaults the WIT documents.
    source.read(file('--config'), file('--catalog'), file('--state'), { retrySecs: 150, pacingWaitSecs: 60, pacingSecs: 600 });
  } else {
    throw new Error(`unknown verb ${verb}`);
  }
} catch (e) {
  error(undefined, e.payload ?? { message: String(e), failureType: 'system-error' });
  process.exitCode = 1;
}
