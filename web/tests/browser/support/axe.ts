// Accessibility checks with axe-core: the page as it is now must have no serious or
// critical violation (WCAG 2.x A and AA rules, plus axe's best practices). What it finds
// is printed with the offending elements, so a failure says what to fix.

import AxeBuilder from '@axe-core/playwright';
import type { Page } from 'playwright-core';

export async function seriousViolations(page: Page): Promise<string[]> {
  const results = await new AxeBuilder({ page }).analyze();
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map(
      (v) =>
        `${v.id} (${v.impact}): ${v.help}\n` +
        v.nodes
          .slice(0, 5)
          .map((n) => `  ${n.target.join(' ')}: ${n.failureSummary?.replaceAll('\n', ' ')}`)
          .join('\n')
    );
}
