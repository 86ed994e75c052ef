/** Cursor paging (first/after) over a table's insertion order, newest first, with opaque typed cursors. */
import { XlstmError } from '../util/errors.ts';

export interface PageArgs {
  /** How many items (0..MAX_PAGE_SIZE, default DEFAULT_PAGE_SIZE). */
  readonly first?: number;
  /** The endCursor of the previous page. */
  readonly after?: string | null;
}

export interface Page<T> {
  readonly items: T[];
  /** Pass as `after` to get the next page; null when the page is empty. */
  readonly endCursor: string | null;
  readonly hasNextPage: boolean;
}

export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 100;

/** A cursor names its table, so a run cursor handed to the checkpoint list is refused, not misread. */
export function encodeCursor(table: string, seq: number): string {
  return Buffer.from(`${table}:${seq}`).toString('base64url');
}

/** The sequence number after which to continue, or null for the first page. */
export function decodeCursor(table: string, cursor: string | null | undefined): number | null {
  if (cursor === undefined || cursor === null) return null;
  const match = /^([a-z_]+):(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!match || match[1] !== table) {
    throw new XlstmError('INVALID_INPUT', `cursor expected an endCursor from a ${table} page, but got ${JSON.stringify(cursor)}.`);
  }
  return Number(match[2]);
}

export function pageSize(first: number | undefined): number {
  const n = first ?? DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(n) || n < 0 || n > MAX_PAGE_SIZE) {
    throw new XlstmError('INVALID_INPUT', `first expected an integer in [0, ${MAX_PAGE_SIZE}], but got ${first}.`);
  }
  return n;
}

/** Builds a page from up to first+1 rows fetched in order; the extra row only signals a next page. */
export function toPage<R extends { seq: number }, T>(table: string, rows: R[], first: number, map: (row: R) => T): Page<T> {
  const shown = rows.slice(0, first);
  const last = shown.at(-1);
  return { items: shown.map(map), endCursor: last ? encodeCursor(table, last.seq) : null, hasNextPage: rows.length > first };
}
