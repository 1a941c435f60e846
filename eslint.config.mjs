// `npm run lint`: dprint's formatting through Effect's eslint plugin (the rule Effect's own
// repository uses), and typescript-eslint's recommended rules, on the project's TypeScript.
import * as effect from "@effect/eslint-plugin"
import tseslint from "typescript-eslint"

export default tseslint.config(
  { ignores: ["node_modules/**", "runs/**", ".cache/**", ".device/**", ".gl/**", "native/**", "**/*.mjs", "**/*.js", "docs/**"] },
  ...tseslint.configs.recommended,
  ...effect.configs.dprint,
  {
    files: ["**/*.ts"],
    rules: {
      "@effect/dprint": [
        "error",
        {
          config: {
            indentWidth: 2,
            lineWidth: 160,
            semiColons: "asi",
            quoteStyle: "preferDouble",
            trailingCommas: "never",
            operatorPosition: "maintain",
            "arrowFunction.useParentheses": "force",
            // module evaluation order stays the author's
            "module.sortImportDeclarations": "maintain"
          }
        }
      ],
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/no-non-null-assertion": "off",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", destructuredArrayIgnorePattern: "^_" }],
      // Data.TaggedEnum's cases without fields are written `{}`
      "@typescript-eslint/no-empty-object-type": ["error", { allowObjectTypes: "always" }]
    }
  }
)
