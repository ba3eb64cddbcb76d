#!/usr/bin/env node
// A py-solc-x compatible front end for the npm `solc` compiler (solcjs, WASM).
// `solcjs --standard-json` prints a line before its JSON, which py-solc-x cannot parse; this
// script answers `--version` like the native binary and maps `--standard-json` (input on
// stdin) to require('solc').compile(input, {import}). Imports resolve from --allow-paths /
// --base-path directories and the current directory.
'use strict';
const fs = require('fs');
const path = require('path');

function loadSolc() {
  const roots = [process.cwd(), path.join(__dirname, '..')];
  for (const root of roots) {
    try {
      return require(require.resolve('solc', { paths: [root] }));
    } catch (err) {
      if (err.code !== 'MODULE_NOT_FOUND') throw err;
    }
  }
  process.stderr.write('npm solc is not installed: run `npm ci` in the repository root\n');
  process.exit(2);
}

const args = process.argv.slice(2);
const solc = loadSolc();

if (args.includes('--version')) {
  process.stdout.write('solc, the solidity compiler commandline interface\n');
  process.stdout.write('Version: ' + solc.version() + '\n');
  process.exit(0);
}

if (!args.includes('--standard-json')) {
  process.stderr.write('usage: solc_wrapper.js --version | --standard-json < input.json\n');
  process.exit(2);
}

const searchDirs = [process.cwd()];
for (let i = 0; i < args.length; i++) {
  if ((args[i] === '--allow-paths' || args[i] === '--base-path') && args[i + 1]) {
    for (const dir of args[i + 1].split(',')) if (dir) searchDirs.push(dir);
  }
}

function findImports(importPath) {
  for (const dir of searchDirs) {
    const candidate = path.resolve(dir, importPath);
    if (fs.existsSync(candidate)) return { contents: fs.readFileSync(candidate, 'utf8') };
  }
  return { error: 'File not found: ' + importPath };
}

const input = fs.readFileSync(0, 'utf8');
process.stdout.write(solc.compile(input, { import: findImports }));
