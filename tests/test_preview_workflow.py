"""preview.yml run through its own steps, with the real fluxfleet, on a real git history: a pull request's merge commit
(its first parent the base it merges into), as GitHub checks it out. The matrix previews exactly the stacks `fluxfleet
affected` lists, the plan checks those stacks (a stack main already breaks fails no pull request), the plan of every
stack plans again only what the change reaches, and the comment on the pull request is one, updated in place. Fakes
stand in for what cannot run here: `gh` (GitHub's API) and `pulumi`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from fluxfleet.plan.cache import DEFAULT_DIR
from tests.git import commit, fleet_repository, git
from tests.test_workflows import evaluate, fake, run_step, shell_of, step, tool, workflow

PREVIEW = workflow("preview.yml")
PLAN = PREVIEW["jobs"]["plan"]
AFFECTED_STEP = step(PLAN, "Stacks the pull request affects")
CHECK_STEP = step(PLAN, "fluxfleet plan of the affected stacks (every stack on main)")
SARIF_STEP = step(PLAN, "fluxfleet plan of every stack (SARIF, for code scanning)")
COMMENT_STEP = step(
    PREVIEW["jobs"]["comment"], "The affected stacks, in one comment on the pull request (updated in place)"
)
LEG_STEP = step(PREVIEW["jobs"]["policy-preview"], "pulumi preview with the policy pack, stack by stack")
BASH = shell_of(PREVIEW, PLAN, AFFECTED_STEP)
MARKER = "<!-- fluxfleet-affected -->"


def outputs(path: Path) -> dict[str, str]:
    """GITHUB_OUTPUT as the runner reads it: `name=value` lines and `name<<DELIMITER` blocks."""
    found: dict[str, str] = {}
    lines = path.read_text().splitlines() if path.exists() else []
    index = 0
    while index < len(lines):
        name, _, value = lines[index].partition("=")
        if "<<" in name:
            name, delimiter = name.split("<<", 1)
            end = lines.index(delimiter, index + 1)
            found[name], index = "\n".join(lines[index + 1 : end]), end + 1
        else:
            found[name], index = value, index + 1
    return found


def pull_request(root: Path, change) -> None:
    """On a branch, `change(root)` committed; main moves on meanwhile (a README change); HEAD is the merge of the
    branch into main, as GitHub checks out a pull request."""
    git(root, "checkout", "-q", "-b", "change")
    change(root)
    commit(root, "the change")
    git(root, "checkout", "-q", "main")
    (root / "README.md").write_text("# fleet\n\nmain moved on\n")
    commit(root, "main moves on")
    git(root, "merge", "-q", "--no-ff", "-m", "merge", "change")


def replace(root: Path, path: str, old: str, new: str) -> None:
    text = (root / path).read_text()
    assert old in text, f"{old!r} is not in {path}"
    (root / path).write_text(text.replace(old, new, 1))


def profile_change(root: Path) -> None:  # reaches dev, staging and prod-weu; not edge-store-001
    replace(
        root,
        "stacks/profiles/aks-platform.yaml",
        "path: ./infrastructure/configs, prune: true",
        "path: ./infrastructure/configs, prune: false",
    )


def broken_dev(root: Path) -> None:  # a mandatory error: http:// carries the repository's credentials in clear
    replace(
        root, "stacks/Pulumi.dev.yaml", "        git:\n", "        git:\n          url: http://git.example.com/f.git\n"
    )


@pytest.fixture
def repo(tmp_path) -> Path:
    """A fleet's repository in tmp_path (where run_step runs), with fluxfleet on PATH as `pip install -e .` puts it."""
    tool("jq")
    tool("openssl")
    fleet_repository(tmp_path)
    (tmp_path / ".gitignore").write_text("bin/\ntemp/\nsummary.md\noutput\n")
    commit(tmp_path, "ignored: the runner's files")
    git(tmp_path, "tag", "-f", "base")
    return tmp_path


def context(**more: object) -> dict[str, object]:
    return {"github.event_name": "pull_request", **more}


def run(step_: dict, repo: Path, ctx: dict[str, object]):
    return run_step(step_, ctx, repo, BASH, PATH=f"{repo / 'bin'}:{Path(sys.executable).parent}:/usr/bin:/bin")


def test_a_profile_change_previews_and_checks_exactly_the_stacks_it_reaches(repo):
    pull_request(repo, profile_change)
    result = run(AFFECTED_STEP, repo, context())
    assert result.returncode == 0, result.stderr
    found = outputs(repo / "output")
    assert json.loads(found["legs"]) == [["dev"], ["prod-weu"], ["staging"]]
    key = "fluxfleet:flux.configurations.platform.kustomizations.infra-configs.prune"
    assert f"| `dev`, `prod-weu`, `staging` | changed | stacks/profiles/aks-platform.yaml: {key} changed |" in (
        found["comment"].splitlines()
    )
    assert "README" not in found["comment"]  # main's own change is not the pull request's
    # the legs are the matrix, and the previews run where Azure is configured
    job = PREVIEW["jobs"]["policy-preview"]
    assert job["strategy"]["matrix"]["leg"] == "${{ fromJSON(needs.plan.outputs.legs) }}"
    assert evaluate(job["if"], context(**{"needs.plan.outputs.legs": found["legs"], "vars.AZURE_CLIENT_ID": "id"}))
    # the check plans those stacks and no other
    checked = run(CHECK_STEP, repo, context())
    assert checked.returncode == 0, checked.stderr
    summary = (repo / "summary.md").read_text()
    assert [
        line.split(" | ")[0] for line in summary.splitlines() if line.startswith("| ") and "stacks/Pulumi." in line
    ] == [
        "| dev",
        "| prod-weu",
        "| staging",
    ]


def test_a_change_that_reaches_no_stack_previews_none_and_passes(repo):
    pull_request(repo, lambda root: (root / "docs.md").write_text("how we work\n"))
    assert run(AFFECTED_STEP, repo, context()).returncode == 0
    found = outputs(repo / "output")
    assert found["legs"] == "[]"
    assert found["comment"].startswith("### no stack affected between `HEAD^1` (")
    job = PREVIEW["jobs"]["policy-preview"]
    assert not evaluate(job["if"], context(**{"needs.plan.outputs.legs": "[]", "vars.AZURE_CLIENT_ID": "id"}))
    checked = run(CHECK_STEP, repo, context())
    assert checked.returncode == 0
    assert (repo / "summary.md").read_text().endswith("No stack affected: nothing to plan.\n")


def test_a_stack_main_already_breaks_fails_no_pull_request_but_one_it_breaks_does(repo):
    broken_dev(repo)
    commit(repo, "dev: broken on main")
    git(repo, "tag", "-f", "base")
    pull_request(repo, profile_change)  # reaches dev too: dev is broken at head
    affected = run(AFFECTED_STEP, repo, context())
    assert affected.returncode == 2
    [line] = affected.stderr.splitlines()
    assert line.startswith("fluxfleet affected: stacks/Pulumi.dev.yaml: fluxfleet:flux.configurations.platform.git.url")
    # a change that reaches staging alone passes, though the plan of every stack (code scanning's) fails on dev
    git(repo, "reset", "-q", "--hard", "base")
    git(repo, "branch", "-q", "-D", "change")
    (repo / "output").unlink(missing_ok=True)
    pull_request(repo, lambda root: replace(root, "stacks/Pulumi.staging.yaml", "{timeout: 5m}", "{timeout: 6m}"))
    assert run(AFFECTED_STEP, repo, context()).returncode == 0
    assert json.loads(outputs(repo / "output")["legs"]) == [["staging"]]
    assert run(CHECK_STEP, repo, context()).returncode == 0
    assert SARIF_STEP["continue-on-error"] is True
    assert run(SARIF_STEP, repo, context()).returncode == 2
    assert "stacks/Pulumi.dev.yaml" in (repo / "fluxfleet.sarif").read_text()


def test_on_main_the_check_plans_every_stack(repo):
    broken_dev(repo)
    commit(repo, "dev: broken on main")
    push = context(**{"github.event_name": "push"})
    assert not evaluate(AFFECTED_STEP["if"], push)
    assert run(CHECK_STEP, repo, push).returncode == 2
    assert "| dev |" in (repo / "summary.md").read_text()


def test_the_plan_of_every_stack_plans_again_only_what_the_change_reaches(repo):
    # main's run fills the cache that the pull request's run restores (actions/cache, at the path plan uses)
    [cache] = [s for s in PLAN["steps"] if s.get("uses", "").startswith("actions/cache@")]
    assert cache["with"]["path"] == str(DEFAULT_DIR)
    assert PLAN["steps"].index(cache) < PLAN["steps"].index(SARIF_STEP) < PLAN["steps"].index(CHECK_STEP)
    warm = run(SARIF_STEP, repo, context(**{"github.event_name": "push"}))
    assert warm.stderr.splitlines()[-1] == "planned 4 stack(s), 0 from the cache"
    pull_request(repo, profile_change)
    planned = run(SARIF_STEP, repo, context())
    assert planned.stderr.splitlines()[-1] == "planned 3 stack(s), 1 from the cache"  # dev, staging, prod-weu
    # and the check after it plans nothing again
    assert run(AFFECTED_STEP, repo, context()).returncode == 0
    checked = run(CHECK_STEP, repo, context())
    assert checked.stderr.splitlines()[-1] == "planned 0 stack(s), 3 from the cache"


# --------------------------------------------------------------------------------------------- the comment

COMMENT_CONTEXT = {
    "github.token": "ghs_token",
    "github.event.pull_request.number": 7,
    "github.server_url": "https://github.com",
    "github.repository": "contoso/fleet",
    "github.run_id": 42,
    "needs.plan.outputs.comment": "### 1 stack affected between `HEAD^1` (`aaaa`) and `HEAD` (`bbbb`)",
}


def fake_gh(repo: Path, comments: list[dict]) -> None:
    """`gh api`: the listing answers `comments` through `--jq` as gh does; every call's arguments are kept, one file
    each, NUL-separated."""
    (repo / "comments.json").write_text(json.dumps(comments))
    fake(
        repo / "bin",
        "gh",
        'calls=$(ls "$RUNNER_TEMP" | grep -c "^gh-" || true)\n'
        'printf "%s\\0" "$@" > "$RUNNER_TEMP/gh-$calls"\n'
        'if [ "$2" = --paginate ]; then exec jq -r "$5" "' + str(repo / "comments.json") + '"; fi',
    )


def gh_calls(repo: Path) -> list[list[str]]:
    calls = sorted((repo / "temp").glob("gh-*"), key=lambda path: int(path.name[3:]))
    return [path.read_text().split("\0")[:-1] for path in calls]


@pytest.mark.parametrize(
    ("comments", "method", "url"),
    [
        ([], "POST", "repos/contoso/fleet/issues/7/comments"),
        (  # its own comment of an earlier push: updated
            [{"id": 5, "user": {"login": "github-actions[bot]"}, "body": f"{MARKER}\nold"}],
            "PATCH",
            "repos/contoso/fleet/issues/comments/5",
        ),
        (  # someone quoting the marker: theirs is left alone
            [{"id": 6, "user": {"login": "mallory"}, "body": f"{MARKER}\nmine"}],
            "POST",
            "repos/contoso/fleet/issues/7/comments",
        ),
    ],
)
def test_the_pull_request_has_one_comment_of_the_affected_stacks_updated_in_place(tmp_path, comments, method, url):
    (tmp_path / "temp").mkdir()
    fake_gh(tmp_path, comments)
    result = run_step(COMMENT_STEP, COMMENT_CONTEXT, tmp_path, BASH)
    assert result.returncode == 0, result.stderr
    listing, written = gh_calls(tmp_path)
    assert listing[:3] == ["api", "--paginate", "repos/contoso/fleet/issues/7/comments"]
    assert written[:4] == ["api", "--method", method, url]
    body = written[written.index("-f") + 1].removeprefix("body=")
    assert body.startswith(f"{MARKER}\n### 1 stack affected")
    assert body.endswith("The plan and the previews: https://github.com/contoso/fleet/actions/runs/42")


def test_the_comment_job_holds_no_checkout_and_skips_a_forks_pull_request():
    job = PREVIEW["jobs"]["comment"]
    assert job["permissions"] == {"pull-requests": "write"}
    assert not any("uses" in s for s in job["steps"])
    same = {
        "!cancelled()": True,
        "github.event_name": "pull_request",
        "needs.plan.outputs.comment": "### 1 stack affected",
        "github.event.pull_request.head.repo.full_name": "contoso/fleet",
        "github.repository": "contoso/fleet",
    }
    assert evaluate(job["if"], same)
    assert not evaluate(job["if"], same | {"github.event.pull_request.head.repo.full_name": "mallory/fleet"})


# --------------------------------------------------------------------------------------------- a leg of the matrix


def test_a_leg_previews_each_of_its_stacks_and_fails_when_one_preview_fails(tmp_path):
    fake(
        tmp_path / "bin",
        "pulumi",
        'echo "$@" >> "$RUNNER_TEMP/pulumi-calls"\nif [ "$3" = staging ]; then echo "error: policy"; exit 1; fi\necho ok',
    )
    result = run_step(LEG_STEP, {"join(matrix.leg, ' ')": "dev staging prod-weu"}, tmp_path, BASH)
    assert result.returncode == 1
    calls = (tmp_path / "temp" / "pulumi-calls").read_text().splitlines()
    assert [call.split()[2] for call in calls] == ["dev", "staging", "prod-weu"]
    assert all("--policy-pack policies" in call for call in calls)
    summary = (tmp_path / "summary.md").read_text()
    assert "### pulumi preview: staging\n````\nerror: policy\n````" in summary
