/**
 * Downstream connections of all listeners of a process together, bounded so that descriptors stay
 * for the admin API and upstream connections (see cli/fd-limit.ts for how the bound is chosen).
 * A connection over budget is closed at once and counted (`process_connection_limit`).
 */
export class ConnectionBudget {
  private inUse = 0;

  constructor(readonly max: number) {}

  get active(): number {
    return this.inUse;
  }

  tryTake(): boolean {
    if (this.inUse >= this.max) return false;
    this.inUse++;
    return true;
  }

  release(): void {
    if (this.inUse > 0) this.inUse--;
  }
}
