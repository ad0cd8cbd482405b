// Opens a local HTML page (the status report, or a run's timeline) in headless Chromium and prints, as one JSON object, what
// the browser tests check:
// the browser used, every request the page made, console errors and warnings, uncaught page errors, failed requests,
// the computed background colour of the grid's cells per data-health, the odd-revision markers, whether a cell's
// detail shows on hover and on keyboard focus, where a run timeline's bars were drawn (fluxfleet runs RUN --format
// html), what the skip link leads to, what axe-core (WCAG 2.2 A and AA) finds, and where the screenshot went.
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
const axe = require("axe-core");
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

// Runs in the page: what the cells look like once the browser has applied the style sheet. A cell is a child of
// the grid's .cells, its health its first class; its name is the span inside it.
function measure() {
  const cells = [...document.querySelectorAll(".cells > *")];
  const colours = {};
  for (const cell of cells) {
    const health = cell.classList[0];
    const colour = getComputedStyle(cell).backgroundColor;
    colours[health] ??= {};
    colours[health][colour] = (colours[health][colour] || 0) + 1;
  }
  const ringed = (cell) => getComputedStyle(cell).boxShadow !== "none";
  const badged = (cell) => getComputedStyle(cell, "::after").content.includes("\u2260"); // ≠
  const symbol = (cell) => getComputedStyle(cell, "::before").content;
  const symbols = {};
  for (const cell of cells) {
    symbols[cell.classList[0]] ??= {};
    symbols[cell.classList[0]][symbol(cell)] = (symbols[cell.classList[0]][symbol(cell)] || 0) + 1;
  }
  const odd = cells.filter((cell) => cell.classList.contains("odd"));
  const even = cells.filter((cell) => !cell.classList.contains("odd"));
  const names = cells.map((cell) => cell.querySelector(":scope > span")?.textContent ?? "");
  const box = (element) => element.getBoundingClientRect();
  return {
    cells: cells.length,
    colours,
    symbols,
    names,
    focusable: cells.filter((cell) => cell.tabIndex >= 0).length,
    largestCell: Math.max(0, ...cells.map((cell) => Math.max(box(cell).width, box(cell).height))),
    odd: {
      cells: odd.length,
      ringed: odd.filter(ringed).length,
      badged: odd.filter(badged).length,
      othersRinged: even.filter(ringed).length,
      othersBadged: even.filter(badged).length,
    },
    tipsShown: cells.filter((cell) => tipOf(cell).shown).length,
    overflowsWidth: document.documentElement.scrollWidth > window.innerWidth,
    pageHeight: document.documentElement.scrollHeight,
  };
}

// Runs in the page: the bars of a run's timeline (fluxfleet runs RUN --format html), each with its lane, where the
// browser drew it within its track (in px), its fill and pattern, the mark after it, and what it says in words.
function measureBars() {
  const tracks = [...document.querySelectorAll(".stage .track")];
  return tracks.flatMap((track, lane) =>
    [...track.querySelectorAll(":scope > .bar")].map((bar) => {
      const box = bar.getBoundingClientRect();
      const within = track.getBoundingClientRect();
      const style = getComputedStyle(bar);
      return {
        lane,
        classes: [...bar.classList],
        left: Math.round((box.left - within.left) * 10) / 10,
        right: Math.round((box.right - within.left) * 10) / 10,
        width: Math.round(box.width * 10) / 10,
        trackWidth: Math.round(within.width * 10) / 10,
        colour: style.backgroundColor,
        pattern: style.backgroundImage,
        after: getComputedStyle(bar, "::after").content,
        title: bar.title,
        said: bar.querySelector(":scope > .vh")?.textContent ?? "",
        saidShown: (bar.querySelector(":scope > .vh")?.getBoundingClientRect().width ?? 0) > 1,
      };
    }),
  );
}

// Runs in the page: is this cell's name shown, and inside the window? (also used by measure)
function tipOf(cell) {
  const tip = cell?.querySelector(":scope > span");
  if (!tip || !cell.parentElement?.classList.contains("cells")) {
    return { stack: null, element: cell?.tagName ?? null, shown: false, inside: false, text: "" };
  }
  const box = tip.getBoundingClientRect();
  return {
    stack: tip.textContent.split(":")[0],
    shown: box.width > 1 && box.height > 1 && getComputedStyle(tip).clip === "auto",
    inside: box.left >= 0 && box.top >= 0 && box.right <= window.innerWidth && box.bottom <= window.innerHeight,
    text: tip.textContent,
  };
}

// Runs in the page: the element that has keyboard focus, and where it is.
function focused() {
  const element = document.activeElement;
  const box = element.getBoundingClientRect();
  return {
    tag: element.tagName.toLowerCase(),
    text: element.textContent,
    href: element.getAttribute("href"),
    inside: box.width > 0 && box.left >= 0 && box.top >= 0 && box.bottom <= window.innerHeight,
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
    await page.evaluate(tipOf.toString()); // measure's helper, declared in the page's scope
    const measured = await page.evaluate(measure);
    measured.bars = await page.evaluate(measureBars);

    await page.screenshot({ path: screenshot, type: "png" }); // the page as it opens: the fleet by stage
    // The name on hover: the mouse over the first cell that is not healthy (or the first cell).
    const target = (await page.$(".cells > :not(.healthy)")) || (await page.$(".cells > *"));
    let hover = null;
    let focus = null;
    const keyboard = { first: null, skipped: null, tabsToCell: null };
    if (target) {
      await target.hover();
      hover = await target.evaluate(tipOf);
      await page.screenshot({ path: `${screenshot}.hover.png`, type: "png" });
    }
    // The keyboard: the mouse out of the way, Tab from the top of the page: the skip link first; Enter on it goes
    // to the table. Then from the skip link again, Tab until a cell has focus, and its name shows.
    await page.mouse.move(0, 0);
    await page.keyboard.press("Tab");
    keyboard.first = await page.evaluate(focused);
    await page.keyboard.press("Enter");
    keyboard.skipped = await page.evaluate(() => {
      const target = document.getElementById(location.hash.slice(1));
      const box = target?.getBoundingClientRect();
      return { hash: location.hash, target: target?.tagName.toLowerCase() ?? null, top: box ? Math.round(box.top) : null };
    });
    await page.focus(".skip"); // back to the top of the page's Tab order
    for (let tabs = 1; tabs <= 2000; tabs += 1) {
      await page.keyboard.press("Tab");
      const [onCell, around] = await page.evaluate(() => [
        document.activeElement?.parentElement?.classList.contains("cells"),
        document.activeElement === document.body || document.activeElement?.classList.contains("skip"),
      ]);
      if (around) break; // back at the top: a page with no cells (a run's timeline)
      if (onCell) {
        keyboard.tabsToCell = tabs;
        focus = await (await page.evaluateHandle(() => document.activeElement)).evaluate(tipOf);
        break;
      }
    }
    // axe-core, evaluated through DevTools (the page's policy allows no script of its own), on WCAG 2.2 A and AA.
    await page.mouse.move(0, 0);
    await page.evaluate(axe.source);
    const accessibility = await page.evaluate(async () => {
      const tags = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"];
      const result = await window.axe.run(document, { runOnly: { type: "tag", values: tags } });
      return {
        rules: result.passes.length + result.violations.length + result.incomplete.length,
        violations: result.violations.map((v) => ({
          id: v.id,
          impact: v.impact,
          help: v.help,
          nodes: v.nodes.length,
          first: v.nodes[0]?.html.slice(0, 200),
        })),
      };
    });
    const version = await browser.version();
    process.stdout.write(
      JSON.stringify({
        browser: { source: chosen.source, version },
        ...found,
        ...measured,
        hover,
        focus,
        keyboard,
        accessibility,
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
