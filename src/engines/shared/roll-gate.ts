import { PodstackError } from '../../errors.js';
import type { Reporter } from '../../events.js';

/**
 * Lets one roll run at a time, in the order they asked, saying so to the ones that wait. Once a
 * roll fails, the ones after it do not start: a change that breaks one server stops there, with
 * the rest still on what they ran (the failure is the caller's to report).
 */
export class RollGate {
  private last: Promise<void> = Promise.resolve();
  private running?: string;
  private failed?: string;

  async turn(unit: string, report: Reporter, roll: () => Promise<void>): Promise<void> {
    const before = this.last;
    let done!: () => void;
    this.last = new Promise((r) => {
      done = r;
    });
    if (this.running)
      report({
        type: 'unit',
        unit,
        state: 'waiting',
        detail: `rolls after ${this.running}: one server at a time`,
      });
    await before;
    try {
      if (this.failed) throw new PodstackError(`${unit} was not rolled: ${this.failed} failed to roll first`);
      this.running = unit;
      await roll();
    } catch (e) {
      this.failed ??= unit;
      throw e;
    } finally {
      this.running = undefined;
      done();
    }
  }
}
