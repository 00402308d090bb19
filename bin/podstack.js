#!/usr/bin/env node
// The installed entry point runs the compiled CLI (see the ./podstack wrapper for running from a checkout).
import '../dist/src/cli/main.js';
