"""The HTML status report: one self-contained page, every model text escaped, same bytes for the same fleet, light
at a thousand clusters. What a browser makes of it is test_html_browser.py."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest

from fluxfleet.status.html import COLOURS, CSP, to_html
from fluxfleet.status.model import ConfigurationStatus, FleetStatus, Health, StackStatus

READ_AT = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
SUB = "6f1c2e0a-3b4d-4c5e-8f90-1a2b3c4d5e6f"
SHA = "0ba6f0d5a8c3b1e2f4d6a8c0b2e4f6a8c0d2e4f6"
OTHER_SHA = "1cb7e1e6b9d4c2f3e5d7b9d1c3f5e7b9d1e3f5e7"
# Every 7th stack unhealthy, every 11th progressing, every 13th unread, every 17th on an odd revision.
HEALTH_EVERY = ((7, Health.unhealthy), (11, Health.progressing), (13, Health.unread))
ODD_EVERY = 17


def stack(name: str, stage: str | None = "production", health: Health = Health.healthy, **changes) -> StackStatus:
    healthy = health is Health.healthy
    configurations = (
        ConfigurationStatus(
            "platform",
            health,
            "Compliant" if healthy else "Non-Compliant",
            "Succeeded",
            f"v1.0.0/{SHA}",
            "tag v1.0.0",
            None if healthy else "Kustomization platform-apps: kustomize build failed: accumulating resources",
            READ_AT,
        ),
        ConfigurationStatus(
            "apps", Health.healthy, "Compliant", "Succeeded", f"main/{SHA}", "branch main", None, READ_AT
        ),
    )
    status = StackStatus(
        stack=name,
        file=f"stacks/{name}.yaml",
        stage=stage,
        kind="aks",
        cluster=f"aks-{name}",
        resource_group=f"rg-{name}",
        subscription_id=SUB,
        health=health,
        summary="all Compliant"
        if healthy
        else "platform: Non-Compliant: Kustomization platform-apps: kustomize build failed",
        cluster_state="Succeeded",
        kubernetes_version="1.31.2",
        extension_state="Succeeded",
        extension_version="1.15.1",
        configurations=configurations,
    )
    return replace(status, **changes)


def fleet(size: int) -> FleetStatus:
    """`size` stores in three stages and a few stacks in none, every health and some odd revisions: the fleet an
    operator looks at, at the size the report must stay light at."""
    stacks = []
    for number in range(1, size + 1):
        health = next((h for every, h in HEALTH_EVERY if number % every == 0), Health.healthy)
        stage = "canary" if number <= size // 20 else "no-stage" if number % 97 == 0 else "production"
        stage = "dev" if number <= 5 else stage
        odd = number % ODD_EVERY == 0
        made = stack(f"edge-store-{number:04d}", None if stage == "no-stage" else stage, health, odd_revision=odd)
        if odd:
            [platform, apps] = made.configurations
            made = replace(made, configurations=(replace(platform, revision=f"v0.9.0/{OTHER_SHA}"), apps))
        stacks.append(made)
    return FleetStatus(stacks, READ_AT, stages=("dev", "canary", "production"))  # as fleet.yaml lists them


def small_fleet(*extra: StackStatus, stages: tuple[str, ...] = ()) -> FleetStatus:
    return FleetStatus(
        [
            *extra,
            stack("dev-weu", "dev"),
            stack("prod-weu", "production", Health.unhealthy),
            stack("prod-neu", "production", Health.progressing, summary="platform: Pending"),
            stack("staging-weu", "staging", odd_revision=True),
            unread("edge-lab", None, "subscription cannot be read: AuthorizationFailed"),
        ],
        READ_AT,
        denied=("subscription 00000000-0000-0000-0000-000000000000: AuthorizationFailed",),
        errors=["cluster aks-edge-lab: Resource Graph answered 503"],
        stages=stages,
    )


def unread(name: str, stage: str | None, why: str) -> StackStatus:
    """A stack whose cluster was not read, as status.build makes it: nothing known but why."""
    return StackStatus(
        name, f"stacks/{name}.yaml", stage, "aks", f"aks-{name}", f"rg-{name}", SUB, Health.unread, why, "unread"
    )


class Page(HTMLParser):
    """The page as a tree walker sees it: tags opened and closed in order (void elements excepted), every
    attribute, and the text, so a test reads what a browser would read."""

    VOID = {"meta", "br", "hr", "img", "input", "link", "wbr", "area", "base", "col", "embed", "source", "track"}

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.problems: list[str] = []
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.doctype = ""
        self.feed(page)
        self.close()
        self.problems += [f"<{tag}> never closed" for tag in self.open]

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = [name for name, _ in attrs]
        if len(names) != len(set(names)):
            self.problems.append(f"<{tag}> repeats an attribute: {names}")
        self.elements.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.open[-1:] or 'nothing'}")
            return
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        key = {name.rstrip("_"): value for name, value in attrs.items()}  # class_ for class
        return [a for t, a in self.elements if t == tag and all(a.get(k) == v for k, v in key.items())]

    def cells(self) -> list[dict[str, str | None]]:
        return [a for t, a in self.elements if t == "div" and "cell" in (a.get("class") or "").split()]


def test_the_page_is_well_formed_html5_with_the_fleet_at_a_glance():
    status = small_fleet()
    page = Page(to_html(status))
    assert page.doctype == "DOCTYPE html" and not page.problems, page.problems
    assert page.find("html", lang="en") and page.find("meta", charset="utf-8")
    text = " ".join(page.text)
    assert "Fleet read at 2026-11-29T03:00:00Z: 5 stacks." in "".join(page.text)
    assert "1 unhealthy" in text and "1 unread" in text and "1 progressing" in text and "2 healthy" in text
    assert "subscription not read: subscription 00000000-0000-0000-0000-000000000000: AuthorizationFailed" in text
    assert "read failed: cluster aks-edge-lab: Resource Graph answered 503" in text


def test_one_row_per_stage_in_fleet_yaml_order_then_other_stages_by_name_and_stacks_in_no_stage_last():
    status = small_fleet(stack("edge-two", None), stages=("dev", "staging", "production"))
    html = to_html(status)
    labels = re.findall(r'<div class="label">(.*?)<small>', html)
    assert labels == ["<b>dev</b>", "<b>staging</b>", "<b>production</b>", "<i>no stage</i>"]  # not by name
    assert "<b>production</b><small>2 stacks · ✗ 1 · … 1</small>" in html  # what needs a look, per stage
    assert "<b>staging</b><small>1 stack · ≠ 1</small>" in html
    rows = re.findall(r'<section class="stage">.*?</section>', html)
    assert [re.findall(r'<span class="n">(.*?)</span>', row) for row in rows] == [
        ["dev-weu"],
        ["staging-weu"],
        ["prod-weu", "prod-neu"],
        ["edge-two", "edge-lab"],
    ]
    named = small_fleet(stack("beta-1", "beta"), stack("alpha-1", "alpha"), stages=("staging",))
    labels = re.findall(r'<div class="label">(.*?)<small>', to_html(named))
    assert labels == [
        "<b>staging</b>",
        "<b>alpha</b>",
        "<b>beta</b>",
        "<b>dev</b>",
        "<b>production</b>",
        "<i>no stage</i>",
    ]


def test_a_cluster_not_read_is_unread_never_without_its_extension():
    html = to_html(small_fleet())
    detail = re.search(r'<span class="n">edge-lab</span>.*?<div class="tip">(.*?)</div></div>', html).group(1)
    assert "<dt>flux extension</dt><dd>unread</dd>" in detail and "<dt>state</dt><dd>unread</dd>" in detail
    row = re.search(r'<tr data-health="unread">.*?</tr>', html).group()
    assert "unread · flux unread" in row and "subscription cannot be read: AuthorizationFailed" in row
    assert "not installed" not in html
    assert '<span class="pill unread">? 1 unread</span>' in html or "1 unread" in html


def test_each_cell_carries_its_health_as_class_data_and_text_and_the_odd_revision_stands_out():
    page = Page(to_html(small_fleet()))
    cells = {re.search(r"^[^:]+", cell["title"] or "").group(): cell for cell in page.cells()}
    assert {name: cell["data-health"] for name, cell in cells.items()} == {
        "dev-weu": "healthy",
        "prod-weu": "unhealthy",
        "prod-neu": "progressing",
        "staging-weu": "healthy",
        "edge-lab": "unread",
    }
    for cell in cells.values():
        assert cell["data-health"] in (cell["class"] or "").split() and cell["tabindex"] == "0"
    assert (cells["staging-weu"]["class"] or "").split() == ["cell", "healthy", "odd"]
    assert [name for name, cell in cells.items() if "odd" in (cell["class"] or "")] == ["staging-weu"]
    assert cells["prod-weu"]["title"] == (
        "prod-weu: unhealthy: platform: Non-Compliant: Kustomization platform-apps: kustomize build failed"
    )
    assert cells["staging-weu"]["title"] == "staging-weu: healthy, odd revision: all Compliant"
    html = to_html(small_fleet())
    # Not colour alone: a symbol and a word in each cell.
    assert '<span aria-hidden="true">✗</span><span class="n">prod-weu</span><span class="vh"> unhealthy</span>' in html
    assert '<b class="o">≠</b><span class="vh"> healthy, odd revision</span>' in html


def test_the_detail_of_a_cell_names_cluster_extension_and_each_configuration():
    html = to_html(small_fleet())
    detail = re.search(r'<span class="n">prod-weu</span>.*?<div class="tip">(.*?)</div></div>', html).group(1)
    text = re.sub(r"<[^>]+>", " ", detail)
    for expected in [
        "stage",
        "production",
        f"aks aks-prod-weu · resource group rg-prod-weu · subscription {SUB}",
        "Succeeded · Kubernetes 1.31.2",
        "flux extension",
        "Succeeded 1.15.1",
        f"platform  Non-Compliant · runs v1.0.0/{SHA} · pins tag v1.0.0",
        "Kustomization platform-apps: kustomize build failed: accumulating resources",
        f"apps  Compliant · runs main/{SHA} · pins branch main",
        "stacks/prod-weu.yaml",
    ]:
        assert expected in text, expected


def test_the_table_lists_the_stacks_to_look_at_worst_first():
    status = small_fleet()
    html = to_html(status)
    table = html[html.index('<h2 id="attention">') :]
    rows = re.findall(r'<tr data-health="(\w+)"><td>.*?</td><td>([^< ]+)', table)
    assert rows == [
        ("unhealthy", "prod-weu"),
        ("unread", "edge-lab"),
        ("progressing", "prod-neu"),
        ("healthy", "staging-weu"),  # healthy, but on an odd revision
    ]
    prod_weu = re.search(r'<tr data-health="unhealthy">.*?</tr>', table).group()
    assert "<b>platform</b>" in prod_weu and "<b>apps</b>" not in prod_weu  # the configurations that explain it
    staging_weu = re.search(r'<tr data-health="healthy">.*?</tr>', table).group()
    assert "<b>platform</b>" in staging_weu and "<b>apps</b>" in staging_weu  # odd revision: every one matters
    healthy = FleetStatus([stack("dev-weu", "dev")], READ_AT)
    assert "<p>Every stack is healthy, each on its stage's revision.</p>" in to_html(healthy)
    assert "<p>No stacks in this report.</p>" in to_html(FleetStatus([], READ_AT))


HOSTILE_NAME = "<img src=x onerror=alert(1)>"
HOSTILE_MESSAGE = '</div><script>alert("pwned")</script><a href="https://evil.example/x">x</a>\x1b[2J'


def test_every_text_from_the_model_is_escaped():
    status = FleetStatus(
        [
            stack(
                HOSTILE_NAME,
                "prod\"'<stage>",
                Health.unhealthy,
                summary=HOSTILE_MESSAGE,
                cluster='aks-"quoted"',
                kubernetes_version="<b>1.31</b>",
                configurations=(
                    ConfigurationStatus(
                        "<i>platform</i>",
                        Health.unhealthy,
                        "Non-Compliant",
                        "Failed",
                        "<rev>",
                        "<pin>",
                        HOSTILE_MESSAGE,
                    ),
                ),
            )
        ],
        READ_AT,
        denied=(HOSTILE_MESSAGE,),
        errors=[HOSTILE_NAME],
    )
    html = to_html(status)
    page = Page(html)
    assert not page.problems, page.problems
    assert {tag for tag, _ in page.elements} <= {
        *("html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "p", "time", "ul", "li", "span"),
        *("main", "section", "div", "b", "i", "small", "dl", "dt", "dd", "table", "thead", "tbody", "tr", "th", "td"),
    }  # no <img>, <script> or <a> from the model: they stayed text
    assert "<script" not in html and "<img" not in html and "<a " not in html and "\x1b" not in html
    text = "".join(page.text)
    assert HOSTILE_NAME in text and '</div><script>alert("pwned")</script>' in text and "\\x1b[2J" in text
    [cell] = page.cells()
    shown = HOSTILE_MESSAGE.replace("\x1b", "\\x1b")  # a control character shown, not sent to the terminal
    assert cell["title"] == f"{HOSTILE_NAME}: unhealthy: {shown}"
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "&quot;pwned&quot;" in html


# Anything that makes a browser fetch: a src or href attribute, a CSS url() or @import. Plain text may name a URL.
FETCHES = re.compile(r"""(?:\b(?:src|href|srcset|action|poster|data)\s*=|url\(|@import)""", re.IGNORECASE)


def test_the_page_fetches_nothing():
    status = fleet(200)
    status.errors.append("see https://status.azure.com/en-us/status and http://aka.ms/arg-throttling")
    html = to_html(status)
    page = Page(html)
    [css] = re.findall(r"<style>(.*?)</style>", html, re.DOTALL)
    markup = re.sub(r">[^<]*<", "><", html)  # the tags alone, without the text between them (nor the style sheet)
    assert not FETCHES.search(markup) and not FETCHES.search(css), FETCHES.search(markup) or FETCHES.search(css)
    assert all(not (attrs.get("src") or attrs.get("href")) for _, attrs in page.elements)
    assert not [tag for tag, _ in page.elements if tag in {"script", "link", "img", "iframe", "object", "a"}]
    assert "https://status.azure.com/en-us/status" in "".join(page.text)  # the link stays readable, as text
    [policy] = page.find("meta", **{"http-equiv": "Content-Security-Policy"})
    assert policy["content"] == CSP and CSP.startswith("default-src 'none'; style-src 'sha256-")


def test_the_same_fleet_gives_the_same_bytes():
    assert to_html(fleet(300)) == to_html(fleet(300))
    later = fleet(300)
    later.read_at = datetime(2026, 11, 29, 4, 0, tzinfo=UTC)
    assert to_html(later) != to_html(fleet(300))  # the read time is the only time on the page


def test_a_naive_read_time_is_taken_as_utc_and_an_offset_one_converted():
    naive = FleetStatus([], datetime(2026, 11, 29, 3, 0))
    offset = FleetStatus([], datetime.fromisoformat("2026-11-29T04:00:00+01:00"))
    assert '<time datetime="2026-11-29T03:00:00Z">' in to_html(naive)
    assert to_html(naive) == to_html(offset)


@pytest.mark.parametrize(("size", "limit"), [(1000, 2_500_000), (5000, 12_500_000)])
def test_the_page_stays_light_at_a_thousand_and_five_thousand_clusters(size, limit):
    html = to_html(fleet(size))
    assert len(html.encode()) < limit
    assert ' style="' not in html  # one style sheet for all cells, no per-cell style
    assert len(Page(html).cells()) == size


def relative_luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


@pytest.mark.parametrize("health", list(Health))
def test_white_text_on_each_health_colour_meets_wcag_aa(health):
    contrast = 1.05 / (relative_luminance(COLOURS[health]) + 0.05)
    assert contrast >= 4.5, f"{health}: {contrast:.2f}:1"
    assert len(set(COLOURS.values())) == len(Health)
