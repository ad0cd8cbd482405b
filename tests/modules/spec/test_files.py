"""modules/spec/files.py: a duplicate key says where both were written; a key read as a number is shown as a key."""

from __future__ import annotations

from pathlib import Path

import pytest

from modules.spec import SpecError, load_stack_file
from modules.spec.files import read_yaml
from tests.modules.test_spec_hostile import stack_text

FILE = "stacks/Pulumi.dev.yaml"


def load_errors(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as caught:
        load_stack_file(path, FILE)
    return [str(issue) for issue in caught.value.issues]


def line_of(text: str, written: str, occurrence: int = 1) -> int:
    lines = [number for number, line in enumerate(text.splitlines(), 1) if line.strip().startswith(written)]
    return lines[occurrence - 1]


def test_a_duplicate_key_names_its_key_path_and_the_lines_of_both(tmp_path):
    platform = stack_text().split("      platform:\n")[1]
    text = stack_text() + "      platform:\n" + platform
    first, again = line_of(text, "platform:"), line_of(text, "platform:", 2)
    assert load_errors(tmp_path, text) == [
        f"{FILE}: fluxfleet:flux.configurations.platform: duplicate key (first at line {first}, again at line {again})"
    ]


def test_every_duplicate_key_of_a_file_is_reported_at_once(tmp_path):
    text = stack_text(
        **{
            "    kind: aks\n": "    kind: aks\n    kind: arc\n",
            "          branch: main\n": "          branch: main\n          tag: v1\n          branch: dev\n",
        }
    )
    assert load_errors(tmp_path, text) == [
        f"{FILE}: fluxfleet:cluster.kind: duplicate key (first at line {line_of(text, 'kind:')}, again at line "
        f"{line_of(text, 'kind:', 2)})",
        f"{FILE}: fluxfleet:flux.configurations.platform.git.branch: duplicate key (first at line "
        f"{line_of(text, 'branch:')}, again at line {line_of(text, 'branch:', 2)})",
    ]


def test_a_duplicate_key_of_a_file_of_fluxfleet_s_own_is_named_without_a_namespace(tmp_path):
    path = tmp_path / "fleet.yaml"
    path.write_text("stages:\n  - name: canary\n    stacks: [dev]\n    name: again\n")
    with pytest.raises(SpecError) as caught:
        read_yaml(path, "stacks/fleet.yaml")
    assert str(caught.value) == "stacks/fleet.yaml: stages[0].name: duplicate key (first at line 2, again at line 4)"


def test_a_key_yaml_reads_as_a_number_is_shown_as_a_key_where_the_nesting_limit_is_hit(tmp_path):
    text = stack_text(**{"      platform:\n": "      1:\n", "dependsOn: [infra-configs]": "dependsOn: &r [*r]"})
    [message] = load_errors(tmp_path, text)
    assert message.startswith(f"{FILE}: fluxfleet:flux.configurations.1.kustomizations.apps.dependsOn[0][0]")
    assert message.endswith("not read: nested deeper than 64 levels")
