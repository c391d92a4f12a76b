import type { TestContext } from 'node:test';

/**
 * What a test started, to stop when it ends (passed or failed): push a step after each thing
 * started; they run in reverse order, each awaited, so a proxy closes before the node behind it.
 */
export function cleanupStack(t: TestContext): (() => unknown)[] {
  const steps: (() => unknown)[] = [];
  t.after(async () => {
    for (const step of steps.reverse()) await step();
  });
  return steps;
}
