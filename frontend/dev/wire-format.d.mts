// Types of wire-format.mjs for the TypeScript tests.
export interface InvalidExample {
  why: string;
  code: string;
  endpoint?: string;
  message?: unknown;
  text?: string;
  browser_tolerates?: string;
}

export interface MessageExamples {
  type: string;
  from: string;
  to: string;
  endpoints: string[];
  browser: string[];
  valid: Record<string, unknown>[];
  invalid: InvalidExample[];
}

export interface WireFormat {
  messages: MessageExamples[];
  any_type: InvalidExample[];
}

export const FIXTURE_PATH: string;
export const wireFormat: WireFormat;
export function shapeProblem(message: unknown): string | null;
