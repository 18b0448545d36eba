#!/usr/bin/env node
// A worker process of `thpsim check --jobs N`: runs the TypeScript worker through tsx.
import { register } from 'tsx/esm/api';

register();
await import('../src/check/jobs-worker.ts');
