"""benchmarks/quality.py: distractors and the report (a 2-prompt, 2-step run)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import quality  # noqa: E402

from vecgen.backends.perceptors.clip import WEIGHTS_DIR  # noqa: E402


def test_distractors_change_one_word_and_keep_grammar():
    assert quality.distractors("an orange circle beneath a cyan star") == [
        "a red circle beneath a cyan star",
        "an orange square beneath a cyan star",
    ]
    assert quality.distractors("two red circles") == ["two orange circles", "two red squares"]
    assert quality.distractors("a red cross") == ["an orange cross", "a red circle"]
    assert quality.distractors("a lighthouse") == []


def test_prompt_file_is_read_without_comments(tmp_path):
    f = tmp_path / "p.txt"
    f.write_text("# header\na red circle  # note\n\n two blue stars\n")
    assert quality.read_prompts(f) == ["a red circle", "two blue stars"]


@pytest.mark.slow  # the benchmark in a subprocess (300 s timeout)
@pytest.mark.skipif(not (WEIGHTS_DIR / "mini-vit.safetensors").is_file(), reason="mini weights not shipped")
def test_report_has_the_promised_fields(tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("a red circle\na blue square\na green triangle\n")
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "quality.py"),
            "--prompts",
            str(prompts),
            "--steps",
            "2",
            "--cutouts",
            "2",
            "--size",
            "48",
            "--only",
            "1,3",
            "--json",
            "--save",
            str(tmp_path / "img"),
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    rep = json.loads(out.stdout)
    assert {"top1", "top3", "mean_judge_cos", "sec_per_prompt", "prompts"} <= set(rep)
    assert [r["prompt"] for r in rep["prompts"]] == ["a red circle", "a green triangle"]
    assert all(r["n_candidates"] == 5 and 1 <= r["rank"] <= 5 for r in rep["prompts"])  # 3 prompts + 2 distractors
    assert rep["draw"] == {"shapes": "blobs", "strokes": 32}
    assert sorted(p.name for p in (tmp_path / "img").iterdir()) == ["01_c2.png", "03_c2.png"]
