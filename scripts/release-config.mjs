// Composes the TAURI_CONFIG the release workflow merges into tauri.conf.json, from what
// the maintainer configured once (see README, "Releases"): the Windows certificate's
// thumbprint (set by the step that imports it) and the updater's key pair. Prints
// `TAURI_CONFIG=<json>` for $GITHUB_ENV, or nothing when there is nothing to merge.
// Half an updater configuration (a public key without the private key, or the reverse)
// stops the release here, before anything is built: such a release could never update.
import { readFileSync } from 'node:fs';

const env = process.env;
const config = {};
const fail = (message) => {
  console.error(`::error::${message}`);
  process.exit(1);
};

if (env.WINDOWS_CERT_THUMBPRINT) {
  config.bundle = {
    windows: {
      certificateThumbprint: env.WINDOWS_CERT_THUMBPRINT,
      digestAlgorithm: 'sha256',
      timestampUrl: 'http://timestamp.digicert.com',
    },
  };
}

const pubkey = (env.TAURI_UPDATER_PUBKEY || '').trim();
const hasPrivate = Boolean((env.TAURI_SIGNING_PRIVATE_KEY || '').trim());
if (pubkey && !hasPrivate) {
  fail('the TAURI_UPDATER_PUBKEY secret is set but the TAURI_SIGNING_PRIVATE_KEY secret is not: updates could not be signed');
}
if (hasPrivate && !pubkey) {
  fail('the TAURI_SIGNING_PRIVATE_KEY secret is set but the TAURI_UPDATER_PUBKEY secret is not: installed apps could not verify updates');
}
if (pubkey) {
  const repository = env.GITHUB_REPOSITORY;
  if (!repository) fail('GITHUB_REPOSITORY is not set: cannot name the update feed');
  config.bundle = { ...(config.bundle || {}), createUpdaterArtifacts: true };
  config.plugins = {
    updater: {
      pubkey,
      endpoints: [`https://github.com/${repository}/releases/latest/download/latest.json`],
    },
  };
}

// The version the feed announces must be the app's: checked here once more, cheaply.
const { version } = JSON.parse(readFileSync(new URL('../tauri.conf.json', import.meta.url), 'utf8'));
if (env.EXPECT_VERSION && env.EXPECT_VERSION !== version) {
  fail(`tauri.conf.json says ${version} but the release is v${env.EXPECT_VERSION}`);
}

if (Object.keys(config).length > 0) {
  console.log(`TAURI_CONFIG=${JSON.stringify(config)}`);
}
