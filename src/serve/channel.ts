/**
 * A push-to-pull bridge: producers push events, one consumer iterates. Unlike an async generator, return()
 * takes effect at once even while next() is pending, so an unsubscribe cancels a request that waits in a queue.
 */
export class Channel<T> implements AsyncIterableIterator<T> {
  private buffer: T[] = [];
  private head = 0;
  private waiter: ((result: IteratorResult<T>) => void) | null = null;
  private ended = false;
  private returned = false;

  /** onReturn runs once, when the consumer stops early (return() before the producer ended). */
  constructor(private readonly onReturn: () => void = () => {}) {}

  push(value: T): void {
    if (this.ended || this.returned) return;
    if (this.waiter) {
      const resolve = this.waiter;
      this.waiter = null;
      resolve({ value, done: false });
      return;
    }
    this.buffer.push(value);
  }

  /** No more values: the consumer drains what is buffered, then sees done. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.waiter && this.head === this.buffer.length) {
      const resolve = this.waiter;
      this.waiter = null;
      resolve({ value: undefined, done: true });
    }
  }

  get isOpen(): boolean {
    return !this.ended && !this.returned;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.head < this.buffer.length) {
      const value = this.buffer[this.head++];
      // Compact now and then so a long stream does not keep every event it has delivered.
      if (this.head > 1024 && this.head * 2 > this.buffer.length) {
        this.buffer = this.buffer.slice(this.head);
        this.head = 0;
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.ended || this.returned) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  return(): Promise<IteratorResult<T>> {
    if (!this.returned) {
      this.returned = true;
      this.buffer = [];
      this.head = 0;
      const wasEnded = this.ended;
      this.ended = true;
      if (this.waiter) {
        const resolve = this.waiter;
        this.waiter = null;
        resolve({ value: undefined, done: true });
      }
      if (!wasEnded) this.onReturn();
    }
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}
