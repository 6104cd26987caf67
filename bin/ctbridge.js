#!/usr/bin/env node
// The ctbridge command. Node 24 runs the TypeScript sources directly (type stripping), so there is no build step.
import '../src/cli/main.ts';
