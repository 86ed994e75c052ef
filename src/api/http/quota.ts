/**
 * Open subscriptions per WebSocket connection and per caller (token, or address without one): a caller cannot
 * hold more batch rows than its share by opening many streams, on one socket or on many.
 */
export interface QuotaLimits {
  readonly perConnection: number;
  readonly perCaller: number;
}

interface Connection {
  readonly caller: string;
  readonly ids: Set<string>;
}

export class SubscriptionQuota {
  private readonly connections = new WeakMap<object, Connection>();
  private readonly callers = new Map<string, number>();

  constructor(private readonly limits: QuotaLimits) {}

  /** Reserves a place for subscription `id` of `connection`; returns why not, or null when reserved. */
  acquire(connection: object, caller: string, id: string): string | null {
    let conn = this.connections.get(connection);
    if (!conn) {
      conn = { caller, ids: new Set() };
      this.connections.set(connection, conn);
    }
    if (conn.ids.has(id)) return null;
    if (conn.ids.size >= this.limits.perConnection) {
      return `this connection expected at most ${this.limits.perConnection} open subscriptions, but already has ${conn.ids.size}. Hint: complete one first, or open another connection.`;
    }
    const held = this.callers.get(conn.caller) ?? 0;
    if (held >= this.limits.perCaller) {
      return `this token expected at most ${this.limits.perCaller} open subscriptions over all its connections, but already has ${held}. Hint: complete some first.`;
    }
    conn.ids.add(id);
    this.callers.set(conn.caller, held + 1);
    return null;
  }

  release(connection: object, id: string): void {
    const conn = this.connections.get(connection);
    if (!conn?.ids.delete(id)) return;
    const left = (this.callers.get(conn.caller) ?? 1) - 1;
    if (left > 0) this.callers.set(conn.caller, left);
    else this.callers.delete(conn.caller);
  }

  /** Everything `connection` still holds (its socket closed). */
  releaseAll(connection: object): void {
    const conn = this.connections.get(connection);
    if (!conn) return;
    for (const id of [...conn.ids]) this.release(connection, id);
    this.connections.delete(connection);
  }

  /** Subscriptions `caller` holds now. */
  held(caller: string): number {
    return this.callers.get(caller) ?? 0;
  }
}
