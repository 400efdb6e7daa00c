"""The DPO compliance notebook runs from top to bottom and produces its charts and files."""

from __future__ import annotations

import base64
import json
import sys
import zipfile
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from learnprivacy.export import read_package

NOTEBOOK = Path(__file__).parent.parent / "examples" / "notebooks" / "compliance_export.ipynb"
KERNEL = "learnprivacy-tests"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _install_kernel(root: Path) -> Path:
    """A kernelspec running this interpreter, so the venv under test runs the notebook.

    The ``python3`` spec found on the machine may start another Python (one without
    learnprivacy); a spec of our own, found first through JUPYTER_PATH, cannot.
    """
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": "learnprivacy tests", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel), encoding="utf-8")
    return root


def _outputs(notebook: Any) -> list[dict[str, Any]]:
    return [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path, Path]:
    """The notebook executed once; returns it, its scratch (TMPDIR) and its working folder."""
    root = tmp_path_factory.mktemp("notebook")
    scratch, cwd = root / "tmp", root / "cwd"
    scratch.mkdir()
    cwd.mkdir()
    with pytest.MonkeyPatch.context() as env:
        # The kernel inherits this environment: its temporary folder, caches and Jupyter
        # runtime files all land under ``root``.
        env.setenv("JUPYTER_PATH", str(_install_kernel(root / "jupyter")))
        env.setenv("JUPYTER_RUNTIME_DIR", str(root / "runtime"))
        env.setenv("TMPDIR", str(scratch))
        env.setenv("MPLCONFIGDIR", str(root / "matplotlib"))
        env.setenv("IPYTHONDIR", str(root / "ipython"))
        notebook = nbformat.read(NOTEBOOK, as_version=4)
        client = NotebookClient(
            notebook,
            kernel_name=KERNEL,
            timeout=300,
            resources={"metadata": {"path": str(cwd)}},
        )
        client.execute()
    return notebook, scratch, cwd


def test_committed_notebook_has_no_outputs() -> None:
    """The notebook is committed cleared: no outputs, no execution counts."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == []
            assert cell.execution_count is None


def test_notebook_runs_without_error_or_warning(executed: tuple[Any, Path, Path]) -> None:
    """Every code cell ran, with no error output and nothing on stderr (no warnings)."""
    notebook, _, _ = executed
    cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert cells
    assert all(cell.execution_count is not None for cell in cells)
    assert not [out for out in _outputs(notebook) if out.output_type == "error"]
    stderr = [out.text for out in _outputs(notebook) if out.get("name") == "stderr"]
    assert stderr == []


def test_notebook_shows_its_two_charts_as_png(executed: tuple[Any, Path, Path]) -> None:
    """Retention due per month and requests per state are displayed as PNG images."""
    notebook, _, _ = executed
    images = [
        base64.b64decode(out["data"]["image/png"])
        for out in _outputs(notebook)
        if "image/png" in out.get("data", {})
    ]
    assert len(images) == 2
    for image in images:
        assert image.startswith(PNG_SIGNATURE)
        assert len(image) > 10_000  # a real chart, not an empty canvas


def test_notebook_writes_only_into_its_own_temporary_folder(
    executed: tuple[Any, Path, Path],
) -> None:
    """Nothing lands in the working folder; the temporary folder holds one report folder."""
    _, scratch, cwd = executed
    assert list(cwd.iterdir()) == []
    assert [p.name.startswith("learnprivacy-dpo-") for p in scratch.iterdir()] == [True]


def test_notebook_produces_the_compliance_bundle_and_a_verified_export(
    executed: tuple[Any, Path, Path],
) -> None:
    """The DPO's zip holds the register, tables and charts; the learner's package verifies."""
    _, scratch, _ = executed
    (out,) = scratch.iterdir()
    with zipfile.ZipFile(out / "compliance-2026-06-15.zip") as bundle:
        names = set(bundle.namelist())
        assert bundle.testzip() is None
        assert bundle.read("retention-due-per-month.png").startswith(PNG_SIGNATURE)
        requests = bundle.read("requests.csv").decode()
    assert {
        "register.html",
        "register.md",
        "register.csv",
        "sweep-dry-run.csv",
        "retention-due-per-month.csv",
        "retention-due-per-month.png",
        "requests.csv",
        "requests-per-state.png",
        "anonymised-progress.csv",
    } <= names
    # The fixed date and seed give the same requests every run.
    assert "DSR-2026-006,access (GDPR Art. 15),2026-05-06,2026-06-08,in_progress,True" in requests
    (export,) = out.glob("export-*.zip")
    package = read_package(export)
    assert package.scope == "access"
    assert {type(r).__name__ for r in package.records()} >= {"Learner", "Progress", "Invoice"}
