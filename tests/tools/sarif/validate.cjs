// Runs Microsoft's SARIF multitool (`validate`) on SARIF files, with the rule kinds the first argument names ("" for
// its default rules, "Sarif;Gh" for those and GitHub's ingestion rules); prints what it found as JSON:
// [{file, line, rule, level, message}]. Exit 0 when it ran, whatever it found; non-zero when it could not.
const { spawnSync } = require("node:child_process");
const { mkdtempSync, readFileSync, rmSync } = require("node:fs");
const { tmpdir } = require("node:os");
const { join } = require("node:path");
const multitool = require("@microsoft/sarif-multitool"); // the platform's self-contained build

const [kinds, ...files] = process.argv.slice(2);
const dir = mkdtempSync(join(tmpdir(), "sarif-validate-"));
try {
  const log = join(dir, "validation.sarif");
  const args = ["validate", ...files, "--output", log, "--log", "ForceOverwrite", "--quiet"];
  if (kinds) args.push("--rule-kind", kinds);
  // no shell: the rule kinds' ';' is an argument, not a command separator
  const run = spawnSync(multitool, args, { encoding: "utf8", env: { ...process.env, DOTNET_CLI_TELEMETRY_OPTOUT: "1" } });
  if (run.status !== 0) {
    process.stderr.write(`${multitool} exited ${run.status}\n${run.stdout}${run.stderr}`);
    process.exit(1);
  }
  const findings = [];
  const [validation] = JSON.parse(readFileSync(log, "utf8")).runs;
  for (const result of validation.results ?? []) {
    const rule = result.ruleId;
    // the rules the log describes carry the message templates its results name by id
    const descriptor = validation.tool.driver.rules?.[result.ruleIndex] ?? {};
    const template = result.message.text ?? descriptor.messageStrings?.[result.message.id]?.text ?? result.message.id;
    const message = template.replace(/\{(\d+)\}/g, (_, i) => result.message.arguments?.[Number(i)] ?? "");
    const location = result.locations?.[0]?.physicalLocation ?? {};
    findings.push({
      file: location.artifactLocation?.uri ?? "",
      line: location.region?.startLine ?? 0,
      rule,
      level: result.level ?? descriptor.defaultConfiguration?.level ?? "warning",
      message,
    });
  }
  process.stdout.write(JSON.stringify(findings));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
