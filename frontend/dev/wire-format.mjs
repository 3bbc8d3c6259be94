// The wire format's examples (shared-protocol/fixtures/wire-format.json, also checked by
// the Rust and TypeScript tests), and a check that a message has the shape of one of the
// valid examples of its type: the fake services send nothing the real ones would not.
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const FIXTURE_PATH = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "shared-protocol", "fixtures", "wire-format.json");

export const wireFormat = JSON.parse(readFileSync(FIXTURE_PATH, "utf8"));

function kind(value) {
  if (Array.isArray(value)) return "array";
  if (value === null) return "null";
  return typeof value;
}

/** For each type: the fields every valid example has, and the kinds each field takes. */
const shapes = new Map(
  wireFormat.messages.map((m) => {
    const kinds = new Map();
    for (const example of m.valid) {
      for (const [field, value] of Object.entries(example)) {
        if (!kinds.has(field)) kinds.set(field, new Set());
        kinds.get(field).add(kind(value));
      }
    }
    const required = [...kinds.keys()].filter((field) => m.valid.every((example) => field in example));
    return [m.type, { kinds, required }];
  }),
);

/**
 * Why `message` (a parsed JSON value) does not have the shape of a valid example of its
 * type, or null when it does: its type is in the fixture, it has every field all valid
 * examples have, and each of its fields appears in some example with the same JSON kind.
 */
export function shapeProblem(message) {
  if (kind(message) !== "object") return `not an object but ${kind(message)}`;
  const shape = shapes.get(message.type);
  if (shape === undefined) return `type ${JSON.stringify(message.type)} has no examples in the wire-format fixture`;
  for (const field of shape.required) {
    if (!(field in message)) return `${message.type} without ${field}, which every valid example has`;
  }
  for (const [field, value] of Object.entries(message)) {
    const kinds = shape.kinds.get(field);
    if (kinds === undefined) return `${message.type} with a field ${field} that no valid example has`;
    if (!kinds.has(kind(value))) return `${message.type} with ${field} a ${kind(value)}, where valid examples have ${[...kinds].join(" or ")}`;
  }
  return null;
}
