"""Fuzzing ``validate`` and ``recommend``: a fixed, seeded corpus of mutated patient records
(scripts/fuzz.py) must keep the command-line contract for every input: exit 0, 1 or 2, no
traceback, no network, no file opened outside the input and the project's own resources,
and under 10 s. A failure lists every input that broke it with what it printed first.

The corpus runs in two worker processes (each calls ``cli.main`` in-process through
``fuzz.run_one``), so that an input that crashes or hangs the interpreter is one listed
failure and not the end of the test run. The audit hook itself is tested here, in this
process.
"""

from __future__ import annotations

import importlib.util
import socket
import sys
from pathlib import Path

import pytest

FUZZ_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "fuzz.py"


def _load_fuzz():
    spec = importlib.util.spec_from_file_location("guidelinekg_fuzz", FUZZ_SCRIPT)
    assert spec is not None and spec.loader is not None, FUZZ_SCRIPT
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


fuzz = _load_fuzz()

SEED = 1
PER_FORMAT = 25
RECOMMEND_EVERY = 5  # every 5th input of a format also goes through recommend
FORMATS = ("ttl", "jsonld", "nt", "rdf", "fhir")
HARD_TIMEOUT = 30.0  # a worker stuck this long on one input is killed: a "hang" failure
MEMORY_LIMIT_MB = 3072
SEED_RECORD = fuzz.SEEDS_DIR / "hr-positive-her2-negative-bone-only.ttl"


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    """(mutants, tasks, outcomes) of the fixed corpus. The canary listener's port is the
    only part of the inputs that changes between runs."""
    canary = fuzz.CanaryListener()
    try:
        mutants = fuzz.corpus(FORMATS, PER_FORMAT, SEED, canary=canary.address)
        folder = tmp_path_factory.mktemp("fuzz")
        paths = fuzz.write_mutants(mutants, folder / "inputs")
        tasks = fuzz.tasks_for(mutants, paths, RECOMMEND_EVERY)
        outcomes = fuzz.run_tasks(tasks, jobs=2, hard_timeout=HARD_TIMEOUT,
                                  memory_limit_mb=MEMORY_LIMIT_MB, work_dir=folder / "workers")
        hits = list(canary.hits)
    finally:
        canary.close()
    for task, outcome in zip(tasks, outcomes, strict=True):
        outcome.network += [f"canary listener reached: {hit}" for hit in hits
                            if f"/{task['name']}" in hit]
    return mutants, tasks, outcomes, hits


def test_the_corpus_is_fixed_and_covers_every_format() -> None:
    first = fuzz.corpus(FORMATS, 3, SEED)
    again = fuzz.corpus(FORMATS, 3, SEED)
    assert [m.data for m in first] == [m.data for m in again]
    assert [m.data for m in fuzz.corpus(FORMATS, 3, SEED + 1)] != [m.data for m in first]
    for fmt in FORMATS:
        assert fuzz.seed_files(fmt), f"no {fmt} seed in {fuzz.SEEDS_DIR}"


def test_every_fuzzed_input_keeps_the_command_line_contract(fuzzed) -> None:
    mutants, tasks, outcomes, hits = fuzzed
    by_name = {m.name: m for m in mutants}
    assert len(outcomes) == len(tasks) == len(FORMATS) * PER_FORMAT + len(FORMATS) * (
        (PER_FORMAT + RECOMMEND_EVERY - 1) // RECOMMEND_EVERY)
    failures = []
    for task, outcome in zip(tasks, outcomes, strict=True):
        broken = outcome.findings(fuzz.SLOW_SECONDS)
        if outcome.exit_code not in fuzz.ALLOWED_EXIT_CODES and "exit-3" not in broken:
            broken = [*broken, f"exit {outcome.exit_code}"]
        if broken:
            mutant = by_name[task["name"]]
            failures.append(f"{outcome.describe()}\n      from {mutant.seed_file} by "
                            f"{', '.join(mutant.operations)}")
    unattributed = [hit for hit in hits if not any(f"/{name}" in hit for name in by_name)]
    assert not unattributed, f"the canary listener was reached: {unattributed}"
    assert not failures, (
        f"{len(failures)} of {len(outcomes)} fuzzed runs broke the contract (exit 0/1/2, no "
        f"traceback, no network, no stray file, under {fuzz.SLOW_SECONDS:.0f} s). The same "
        f"inputs: `python scripts/fuzz.py --per-format {PER_FORMAT} --seed {SEED} --out DIR`; "
        "one alone: `python scripts/fuzz.py --replay FILE [--command recommend]`:\n"
        + "\n".join(failures))


def test_the_audit_hook_records_a_connection_and_a_file_outside_the_input(tmp_path) -> None:
    record_file = tmp_path / "input.ttl"
    record_file.write_text("# a record\n")
    outside = tmp_path / "outside.txt"
    outside.write_text("not the input\n")
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        with fuzz.audit_window([record_file]) as record:
            record_file.read_text()
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
            outside.read_text()
    assert any(event.startswith("socket.connect") for event in record.network), record
    assert any(str(outside.resolve()) in line for line in record.stray_files), record
    assert not any(str(record_file.resolve()) in line for line in record.stray_files), record
    # Unarmed again: nothing more is recorded.
    with fuzz.audit_window([record_file]) as quiet:
        pass
    outside.read_text()
    assert (quiet.network, quiet.stray_files) == ([], [])


def test_run_one_runs_the_command_in_process_and_a_good_record_passes() -> None:
    outcome = fuzz.run_one(SEED_RECORD, "validate")
    assert (outcome.exit_code, outcome.findings()) == (0, []), outcome.describe()
    outcome = fuzz.run_one(SEED_RECORD, "recommend")
    assert (outcome.exit_code, outcome.findings()) == (0, []), outcome.describe()


class _Escaped(BaseException):
    """An exception main() does not catch."""


@pytest.mark.parametrize(("failure", "expected"), [
    (ZeroDivisionError("boom"), {"exit-3", "stray-file"}),
    (SystemExit(5), {"other-exit", "stray-file"}),
    (_Escaped("escaped"), {"traceback", "stray-file"}),
])
def test_run_one_reports_a_broken_run(monkeypatch, tmp_path, failure, expected) -> None:
    import guidelinekg.validation as validation

    outside = tmp_path / "elsewhere.txt"
    outside.write_text("x")

    def broken(args):
        outside.read_text()
        raise failure

    monkeypatch.setattr(validation, "run", broken)
    outcome = fuzz.run_one(SEED_RECORD, "validate")
    assert set(outcome.findings()) == expected, outcome.describe()
    assert any(str(outside.resolve()) in line for line in outcome.stray_files)


def test_a_worker_that_dies_on_an_input_is_reported_and_replaced(tmp_path) -> None:
    # An unknown command makes run_one raise in the worker, which then dies: that input is
    # a "crash", and a new worker takes the next one.
    tasks = [{"name": "dies", "path": str(SEED_RECORD), "command": "no-such-command"},
             {"name": "after", "path": str(SEED_RECORD), "command": "validate"}]
    crashed, after = fuzz.run_tasks(tasks, jobs=1, hard_timeout=HARD_TIMEOUT,
                                    memory_limit_mb=MEMORY_LIMIT_MB, work_dir=tmp_path)
    assert crashed.findings() == ["crash"], crashed.describe()
    assert "no-such-command" in (crashed.crash or ""), crashed.crash
    assert (after.exit_code, after.findings()) == (0, []), after.describe()
