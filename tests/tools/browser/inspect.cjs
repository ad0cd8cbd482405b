// Opens a local HTML status report in headless Chromium and prints, as one JSON object, what the browser test checks:
// the browser used, every request the page made, console errors and warnings, uncaught page errors, failed requests,
// the computed background colour of the grid's cells per data-health, the odd-revision markers, whether a cell's
// detail shows on hover and on keyboard focus, and where the screenshot went.
//
//   node inspect.cjs REPORT.html SCREENSHOT.png [WIDTH HEIGHT]
//
// The browser: $FLUXFLEET_CHROMIUM if set, else Debian's `chromium` on PATH (starts without unpacking), else the
// Chromium that the npm package @sparticuz/chromium carries in its tarball, unpacked once into node_modules/.cache.
// Nothing is downloaded: the page is a file:// URL and the browser's background services are off.
// Exit 0 when the page was inspected, whatever was found; non-zero, with the reason on stderr, when it could not be.
"use strict";

const fs = require("node:fs");
const path = require("node:path");
const { pipeline } = require("node:stream/promises");
const { pathToFileURL } = require("node:url");
const { inspect } = require("node:util");
const zlib = require("node:zlib");
const puppeteer = require("puppeteer-core");
const tar = require("tar-fs");

const PACKAGE = path.join(__dirname, "node_modules", "@sparticuz", "chromium");
const VERSION = JSON.parse(fs.readFileSync(path.join(PACKAGE, "package.json"), "utf8")).version;
const UNPACKED = path.join(__dirname, "node_modules", ".cache", `chromium-${VERSION}`);
// Flags for a closed network and a root user: no sandbox (root in a container), no GPU, and none of the
// background services that would try to reach Google's hosts.
const FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-default-apps",
  "--no-first-run",
  "--no-default-browser-check",
];

function onPath(name) {
  for (const dir of (process.env.PATH || "").split(path.delimiter)) {
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return null;
}

// The package's own unpacker writes to os.tmpdir() and trusts whatever it finds there; this one unpacks into a
// private staging directory and renames it into place, so that two test runs at once never see half a browser.
async function unpack() {
  if (fs.existsSync(path.join(UNPACKED, "chromium"))) return UNPACKED;
  fs.mkdirSync(path.dirname(UNPACKED), { recursive: true });
  const staging = fs.mkdtempSync(`${UNPACKED}.partial-`);
  const bin = path.join(PACKAGE, "bin");
  const untar = (name, into) =>
    pipeline(fs.createReadStream(path.join(bin, name)), zlib.createBrotliDecompress(), tar.extract(into));
  await Promise.all([
    pipeline(
      fs.createReadStream(path.join(bin, "chromium.br")),
      zlib.createBrotliDecompress(),
      fs.createWriteStream(path.join(staging, "chromium"), { mode: 0o755 }),
    ),
    untar("swiftshader.tar.br", staging), // software GL beside the binary, where Chromium looks for it
    untar("fonts.tar.br", path.join(staging, "fonts")),
    untar("al2023.tar.br", path.join(staging, "al2023")), // NSS and expat: no system library needed but glibc
  ]);
  // The package's fonts.conf names Lambda's directories; this one adds its fonts to the system's.
  fs.writeFileSync(
    path.join(staging, "fonts.conf"),
    '<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">\n<fontconfig>\n' +
      '  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>\n' +
      `  <dir>${path.join(UNPACKED, "fonts", "fonts")}</dir>\n</fontconfig>\n`,
  );
  try {
    fs.renameSync(staging, UNPACKED);
  } catch (error) {
    if (!fs.existsSync(path.join(UNPACKED, "chromium"))) throw error;
    fs.rmSync(staging, { recursive: true, force: true }); // another run unpacked it first
  }
  return UNPACKED;
}

async function browserToUse() {
  const given = process.env.FLUXFLEET_CHROMIUM || onPath("chromium");
  if (given) return { source: given, executablePath: given, headless: true, env: process.env };
  const dir = await unpack();
  const libraries = path.join(dir, "al2023", "lib");
  return {
    source: `npm @sparticuz/chromium ${VERSION}`,
    executablePath: path.join(dir, "chromium"),
    headless: "shell", // the package's build is chrome-headless-shell
    env: {
      ...process.env,
      LD_LIBRARY_PATH: [libraries, process.env.LD_LIBRARY_PATH].filter(Boolean).join(":"),
      FONTCONFIG_FILE: path.join(dir, "fonts.conf"),
    },
  };
}

// Runs in the page: what the cells look like once the browser has applied the style sheet.
function measure() {
  const cells = [...document.querySelectorAll(".cell[data-health]")];
  const colours = {};
  for (const cell of cells) {
    const health = cell.dataset.health;
    const colour = getComputedStyle(cell).backgroundColor;
    colours[health] ??= {};
    colours[health][colour] = (colours[health][colour] || 0) + 1;
  }
  const ringed = (cell) => getComputedStyle(cell).boxShadow !== "none";
  const badged = (cell) => {
    const badge = cell.querySelector(".o");
    return badge !== null && getComputedStyle(badge).display !== "none" && badge.getBoundingClientRect().width > 0;
  };
  const odd = cells.filter((cell) => cell.classList.contains("odd"));
  const even = cells.filter((cell) => !cell.classList.contains("odd"));
  return {
    cells: cells.length,
    colours,
    odd: {
      cells: odd.length,
      ringed: odd.filter(ringed).length,
      badged: odd.filter(badged).length,
      othersRinged: even.filter(ringed).length,
      othersBadged: even.filter(badged).length,
    },
    tipsShown: [...document.querySelectorAll(".tip")].filter((tip) => getComputedStyle(tip).display !== "none").length,
    overflowsWidth: document.documentElement.scrollWidth > window.innerWidth,
    pageHeight: document.documentElement.scrollHeight,
  };
}

// Runs in the page: is this cell's detail shown, and inside the window?
function tipOf(cell) {
  const tip = cell?.querySelector(":scope > .tip");
  if (!tip) return { stack: null, element: cell?.tagName ?? null, shown: false, inside: false, text: "" };
  const box = tip.getBoundingClientRect();
  return {
    stack: cell.querySelector(".n").textContent,
    shown: getComputedStyle(tip).display !== "none" && box.width > 0 && box.height > 0,
    inside: box.left >= 0 && box.top >= 0 && box.right <= window.innerWidth && box.bottom <= window.innerHeight,
    text: tip.textContent,
  };
}

async function main() {
  const [report, screenshot, width = "1280", height = "800"] = process.argv.slice(2);
  if (!report || !screenshot) throw new Error("usage: node inspect.cjs REPORT.html SCREENSHOT.png [WIDTH HEIGHT]");
  const started = Date.now();
  const chosen = await browserToUse();
  const browser = await puppeteer.launch({
    executablePath: chosen.executablePath,
    headless: chosen.headless,
    env: chosen.env,
    args: FLAGS,
    pipe: true, // DevTools over the process's pipes: no port opened, works in a namespace with no network at all
    timeout: 30000,
  });
  try {
    const launched = Date.now();
    const page = await browser.newPage();
    await page.setViewport({ width: Number(width), height: Number(height), deviceScaleFactor: 1 });
    const found = { requests: [], console: [], pageErrors: [], failedRequests: [] };
    page.on("request", (request) => found.requests.push(request.url()));
    page.on("requestfailed", (request) =>
      found.failedRequests.push(`${request.url()}: ${request.failure()?.errorText ?? "failed"}`),
    );
    page.on("response", (response) => {
      if (response.status() >= 400) found.failedRequests.push(`${response.url()}: HTTP ${response.status()}`);
    });
    page.on("console", (message) => found.console.push({ type: message.type(), text: message.text() }));
    page.on("pageerror", (error) => found.pageErrors.push(String(error)));

    await page.goto(pathToFileURL(path.resolve(report)).href, { waitUntil: "load", timeout: 30000 });
    const loaded = Date.now();
    const measured = await page.evaluate(measure);

    // The detail on hover: the mouse over the first cell that is not healthy (or the first cell).
    const target = (await page.$(".cell:not(.healthy)")) || (await page.$(".cell"));
    let hover = null;
    let focus = null;
    if (target) {
      await target.hover();
      hover = await target.evaluate(tipOf);
      await page.screenshot({ path: screenshot, type: "png" });
      // ... and on keyboard focus: the mouse out of the way, Tab to the first focusable element, a cell.
      await page.mouse.move(0, 0);
      await page.keyboard.press("Tab");
      focus = await (await page.evaluateHandle(() => document.activeElement)).evaluate(tipOf);
    } else {
      await page.screenshot({ path: screenshot, type: "png" });
    }
    const version = await browser.version();
    process.stdout.write(
      JSON.stringify({
        browser: { source: chosen.source, version },
        ...found,
        ...measured,
        hover,
        focus,
        screenshot: path.resolve(screenshot),
        milliseconds: { launch: launched - started, load: loaded - launched, total: Date.now() - started },
      }),
    );
  } finally {
    await browser.close();
  }
}

main().catch((error) => {
  process.stderr.write(`${error instanceof Error ? error.stack : inspect(error)}\n`);
  process.exit(1);
});
