// Run jlpm (the Yarn 3 bundled with JupyterLab) against the npm registry this machine's npm
// is configured with. Yarn 3 ignores .npmrc and NPM_CONFIG_REGISTRY, so without this a
// machine whose npm points at a mirror would have jlpm go to Yarn's default registry.
// An explicit YARN_NPM_REGISTRY_SERVER always wins; no registry host is written to disk.
//
// Usage (from this folder): node scripts/jlpm.mjs install
import { spawnSync } from 'node:child_process';

const onWindows = process.platform === 'win32';

function npmRegistry() {
  const result = spawnSync('npm', ['config', 'get', 'registry'], {
    encoding: 'utf8',
    shell: onWindows,
    stdio: ['ignore', 'pipe', 'ignore']
  });
  const registry = result.status === 0 ? result.stdout.trim() : '';
  return /^https?:\/\//.test(registry) ? registry.replace(/\/+$/, '') : null;
}

const env = { ...process.env };
if (!env.YARN_NPM_REGISTRY_SERVER) {
  const registry = npmRegistry();
  if (registry) {
    env.YARN_NPM_REGISTRY_SERVER = registry;
  } else {
    console.warn(
      'jlpm.mjs: could not read the registry from npm; jlpm uses its default registry.'
    );
  }
}

const jlpm = spawnSync('jlpm', process.argv.slice(2), {
  env,
  shell: onWindows,
  stdio: 'inherit'
});
if (jlpm.error) {
  console.error(`jlpm.mjs: could not run jlpm: ${jlpm.error.message}`);
}
process.exit(jlpm.status ?? 1);
