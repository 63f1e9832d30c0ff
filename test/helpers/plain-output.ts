// jest-worker sets FORCE_COLOR=1 in its workers when `npm test` runs in a terminal, and the CLI honours
// FORCE_COLOR anywhere (src/cli/output.ts): tests that read the CLI's output in-process must see it as a
// pipe would, whatever terminal started them. Tests of colour set it themselves.
delete process.env.FORCE_COLOR;
// likewise the width the terminal report wraps to (a shell that exports COLUMNS)
delete process.env.COLUMNS;
