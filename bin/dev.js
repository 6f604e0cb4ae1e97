#!/usr/bin/env node
// Development entry point: same as run.js but with oclif's development mode (verbose errors).
import { execute } from '@oclif/core';

await execute({ development: true, dir: import.meta.url });
