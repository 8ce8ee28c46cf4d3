import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * Pure code: deciders, folds, the scheduler's placement core, money and contracts. It does no
 * I/O and reads no clock (time and ids arrive in the command; CONTRIBUTING, "Pure deciders and
 * folds"). Tests of it (`*.spec.ts`) may do either.
 */
const pureCode = [
  '**/*.decider.ts',
  '**/*.fold.ts',
  '**/*.evolve.ts',
  '**/*.state.ts',
  'apps/scheduler/src/placement/**/*.ts',
  'libs/money/src/**/*.ts',
  'libs/contracts/src/**/*.ts',
  'libs/eventsourcing/src/{build-event,decider,event-stream,handle-command,specification}.ts',
];
/** Where the no-unsafe-* rules are on. */
const typedAreas = [
  'apps/scheduler/**/*.ts',
  'apps/reliability/**/*.ts',
  'apps/metering/src/**/*.ts',
  'apps/intake/src/**/*.ts',
  'libs/client/**/*.ts',
  'libs/eventsourcing/**/*.ts',
  'libs/db/**/*.ts',
  'libs/messaging/**/*.ts',
  'libs/replay/**/*.ts',
  'libs/runtime/**/*.ts',
  'libs/testing/**/*.ts',
];
const pureMessage = 'pure code does no I/O: no database, bus, Nest or shell libraries (the shell passes what it needs in)';
const clockMessage = 'pure code reads no clock: take the instant from the command (the shell reads its Clock)';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'reports/', '.fastgpu/', 'data/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // Nest's DI needs injected classes imported as values, never `import type`.
      '@typescript-eslint/consistent-type-imports': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-extraneous-class': 'off',
      '@typescript-eslint/only-throw-error': 'off',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/restrict-template-expressions': 'off',
      '@typescript-eslint/no-redundant-type-constituents': 'off',
      '@typescript-eslint/unbound-method': 'off',
      '@typescript-eslint/no-base-to-string': 'off',
      // A switch over a union names every member, or says what the rest does with `default`. A
      // switch over the reader's own union (its events, its commands) ends in a `never` check;
      // one that reads a few types of the whole catalogue ends in `default: return state`.
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
    },
  },
  {
    files: pureCode,
    // Tests may do I/O; the catalogue CLI writes docs/event-catalogue.md (a shell beside the contracts).
    ignores: ['**/*.spec.ts', 'libs/contracts/src/*.cli.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['kysely', 'kysely/*', 'pg', '@electric-sql/*', 'nats', '@nats-io/*', '@nestjs/*', 'node:fs', 'node:fs/*', 'fs', 'node:child_process', 'node:net', 'node:http', 'node:https'], message: pureMessage },
            { group: ['@fastgpu/db', '@fastgpu/messaging', '@fastgpu/runtime', '@fastgpu/platform', '@fastgpu/http', '@fastgpu/grpc'], message: pureMessage, allowTypeImports: true },
          ],
        },
      ],
      'no-restricted-syntax': [
        'error',
        { selector: "CallExpression[callee.object.name='Date'][callee.property.name='now']", message: clockMessage },
        { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: clockMessage },
        { selector: "CallExpression[callee.object.name='performance'][callee.property.name='now']", message: clockMessage },
        { selector: "CallExpression[callee.object.name='Math'][callee.property.name='random']", message: 'pure code draws no random numbers: ids arrive in the command (or derive from it: deriveId)' },
      ],
    },
  },
  {
    // Typed end to end: no `any` flows through these areas (the database is Kysely<Database>).
    // The rest still has `any` in tests and a few reads; each area turns these on when it passes.
    files: typedAreas,
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'error',
      '@typescript-eslint/no-unsafe-member-access': 'error',
      '@typescript-eslint/no-unsafe-argument': 'error',
      '@typescript-eslint/no-unsafe-call': 'error',
      '@typescript-eslint/no-unsafe-return': 'error',
    },
  },
  {
    // vitest's asymmetric matchers (`expect.stringMatching(…)` inside `toMatchObject`) are typed `any`.
    files: typedAreas.map((area) => area.replace(/\*\.ts$/, '*.spec.ts')),
    rules: { '@typescript-eslint/no-unsafe-assignment': 'off' },
  },
  { files: ['**/*.js', '**/*.mjs'], ...tseslint.configs.disableTypeChecked },
);
