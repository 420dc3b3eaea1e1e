// The small test harness smoke.mjs and stream.mjs share: one line per check ("ok - ..." /
// "not ok - ..."), a failing check skips the rest of its section, and `finish()` prints the
// "N passed, N failed" line and sets the exit code.

import assert from "node:assert/strict";

let passed = 0;
let failed = 0;
/** Thrown to skip the rest of a section (a check failed, or a precondition is missing). */
export const abortSection = Symbol("abort section");

/** Runs one check; a check may return a short note to print beside its name. */
export async function check(name, fn) {
  try {
    const note = await fn();
    passed += 1;
    console.log(`ok - ${name}${note ? ` (${note})` : ""}`);
  } catch (error) {
    failed += 1;
    const detail = error instanceof assert.AssertionError ? error.message : `${error?.name}: ${error?.message}`;
    console.log(`not ok - ${name}\n    ${String(detail).replaceAll("\n", "\n    ")}`);
    throw abortSection;
  }
}

/** Runs a group of checks; the first failing check skips the rest of the group. */
export async function section(name, fn) {
  console.log(`# ${name}`);
  try {
    await fn();
  } catch (error) {
    if (error !== abortSection) {
      failed += 1;
      console.log(`not ok - ${name} (unexpected error)\n    ${error?.stack ?? error}`);
    } else {
      console.log(`# ${name}: remaining checks skipped`);
    }
  }
}

/** Prints the summary line and sets the exit code. */
export function finish() {
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed ? 1 : 0;
}
