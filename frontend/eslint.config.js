// Lint of the frontend: ESLint's recommended rules, typescript-eslint's type-aware
// recommended rules for the TypeScript sources, and the rules of React hooks.
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import reactHooks from "eslint-plugin-react-hooks";
import globals from "globals";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "e2e-artifacts/", "test-results/"] },
  js.configs.recommended,
  {
    files: ["src/**/*.{ts,tsx}", "vite.config.ts"],
    extends: [...tseslint.configs.recommended],
    plugins: { "react-hooks": reactHooks },
    languageOptions: { globals: globals.browser },
    rules: reactHooks.configs.recommended.rules,
  },
  {
    files: ["dev/**/*.mjs"],
    languageOptions: { globals: globals.node },
  },
  {
    // The end-to-end tests run in Node and hand functions to the page (page.evaluate).
    files: ["e2e/**/*.mjs"],
    languageOptions: { globals: { ...globals.node, ...globals.browser } },
  },
);
