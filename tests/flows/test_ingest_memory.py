"""Over-limit input is refused before it can take the machine's memory.

A fresh interpreter reads, with the default limits, a gzip bomb (4 MB that
inflate to 4 GiB), a header of 200,000 columns, a 10 MB value, JSON nested
100,000 deep and a "billion laughs" YAML; its peak resident memory, measured
with ``resource.getrusage``, stays under 1 GiB and every file is refused with
its limit named.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

PEAK_LIMIT_KIB = 1 << 20
"""1 GiB (``ru_maxrss`` is in KiB on Linux)."""

_SCRIPT = textwrap.dedent(
    """
    import gzip, json, sys
    from datetime import date
    from pathlib import Path

    from flows.errors import InputRejectedError
    from flows.landing import read_landing_file
    from flows.limits import DEFAULT_LIMITS
    from flows.safe_yaml import load_yaml_file

    root = Path(sys.argv[1])
    day = root / "landing" / "2024-03-05"
    day.mkdir(parents=True)
    member = gzip.compress(b"0" * (16 << 20), compresslevel=9)
    (day / "loans.csv.gz").write_bytes(gzip.compress(b"loan_id\\n") + member * 256)
    (day / "pool_assets.csv").write_text(",".join(f"c{i}" for i in range(200_000)) + "\\n")
    (day / "loans.x.csv").write_text("loan_id,channel\\nN1," + "x" * 10_000_000 + "\\n")
    (day / "repayments.jsonl").write_text("[" * 100_000 + "]" * 100_000 + "\\n")
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 9):
        name, previous = chr(97 + level), chr(96 + level)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    deal = root / "landing" / "deals" / "BOMB.yaml"
    deal.parent.mkdir(parents=True)
    deal.write_text("\\n".join(lines) + "\\n")

    errors = {}
    for path in sorted(day.iterdir()):
        read = read_landing_file("loans", date(2024, 3, 5), path, root, limits=DEFAULT_LIMITS)
        errors[path.name] = read.error
    try:
        load_yaml_file(deal, root, DEFAULT_LIMITS)
    except InputRejectedError as exc:
        errors[deal.name] = str(exc)
    # VmHWM is this program's own peak: ru_maxrss would also count the parent's size at
    # the fork (Linux keeps it across exec), so a large test run would inflate it.
    status = Path("/proc/self/status").read_text().splitlines()
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    print(json.dumps({"peak_kib": peak, "errors": errors}))
    """
)


def test_over_limit_input_stays_under_a_gibibyte(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    result = json.loads(done.stdout)
    assert result["peak_kib"] < PEAK_LIMIT_KIB
    errors = result["errors"]
    assert "over the limit max_decompressed_bytes" in errors["loans.csv.gz"]
    assert "over the limit max_columns" in errors["pool_assets.csv"]
    assert "over the limit max_field_bytes" in errors["loans.x.csv"]
    assert "over the limit max_json_depth" in errors["repayments.jsonl"]
    assert "landing/deals/BOMB.yaml:5: more than 32 aliases" in errors["BOMB.yaml"]
