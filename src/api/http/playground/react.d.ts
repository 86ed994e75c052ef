/** The two React entry points the playground script calls (React ships no typings and @types/react is not installed). */
declare module 'react' {
  export function createElement(type: unknown, props?: Record<string, unknown> | null, ...children: unknown[]): unknown;
}

declare module 'react-dom/client' {
  export function createRoot(container: Element): { render(element: unknown): void; unmount(): void };
}
