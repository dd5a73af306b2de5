"""Regenerate the checked-in Python code for protos/parley/v1 (run: python scripts/gen_protos.py).

With --check, generate into a temporary folder and exit 1 if the checked-in code differs.
"""

from __future__ import annotations

import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
OUT = ROOT / "services" / "parley" / "v1"
INIT = '"""Generated protobuf and gRPC code for parley.v1 (scripts/gen_protos.py)."""\n'


def generate(out_root: Path) -> Path:
    files = sorted(str(p.relative_to(PROTOS)) for p in (PROTOS / "parley" / "v1").glob("*.proto"))
    include = Path(protoc.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{PROTOS}",
        f"-I{include}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        # Typed stubs of the gRPC stubs and servicers (mypy-protobuf, a dev dependency), for mypy.
        f"--plugin=protoc-gen-mypy_grpc={Path(sys.executable).parent / 'protoc-gen-mypy_grpc'}",
        "--mypy_grpc_opt=quiet",
        f"--mypy_grpc_out={out_root}",
        *files,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    package = out_root / "parley" / "v1"
    (package / "__init__.py").write_text(INIT)
    return package


def main() -> int:
    check = "--check" in sys.argv[1:]
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        names = sorted(p.name for p in fresh.iterdir() if p.is_file())
        if check:
            current = sorted(p.name for p in OUT.glob("*") if p.is_file() and p.suffix in {".py", ".pyi"})
            _, mismatch, errors = filecmp.cmpfiles(fresh, OUT, names, shallow=False)
            if current != names or mismatch or errors:
                print("generated code is stale: run python scripts/gen_protos.py", mismatch, errors)
                return 1
            print(f"generated code is fresh ({len(names)} files)")
            return 0
        OUT.mkdir(parents=True, exist_ok=True)
        for stale in OUT.glob("*_pb2*"):
            stale.unlink()
        for name in names:
            shutil.copy2(fresh / name, OUT / name)
    print(f"wrote {len(names)} files to {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
