/**
 * Parsed and validated documents by their text. Clients send the same subscription text over and over, and parse
 * plus validate (with the depth, nesting and cost rules) is ~2-3 ms of the server's one thread each time. The rules
 * read no variable values, so a text that validated once validates again. Only valid documents are kept, and
 * only texts up to `maxKeyChars`, so invalid or huge queries cannot fill it; least recently used goes first.
 */
import type { DocumentNode } from 'graphql';

export class DocumentCache {
  private readonly documents = new Map<string, DocumentNode>();

  constructor(
    private readonly capacity = 256,
    private readonly maxKeyChars = 16_384,
  ) {}

  get(text: string): DocumentNode | undefined {
    const document = this.documents.get(text);
    if (document) {
      this.documents.delete(text);
      this.documents.set(text, document);
    }
    return document;
  }

  /** Keeps a document that parsed and validated without errors. */
  set(text: string, document: DocumentNode): void {
    if (text.length > this.maxKeyChars || this.capacity < 1) return;
    this.documents.delete(text);
    this.documents.set(text, document);
    if (this.documents.size > this.capacity) this.documents.delete(this.documents.keys().next().value as string);
  }

  get size(): number {
    return this.documents.size;
  }
}
