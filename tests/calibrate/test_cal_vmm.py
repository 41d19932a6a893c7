"""The harness's CUDA VMM calls, run through cuda-bindings against a stand-in driver (no GPU needed).

``fake_libcuda.c`` is compiled into a ``libcuda.so.1`` that cuda-bindings loads in a subprocess. It
checks arguments and the VMM call order as the real driver does, so these tests catch a wrong
signature, a wrong struct field or a leaked handle in ``calibrate/harness/vmm.py`` before a GPU run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("cuda.bindings.driver", reason="cuda-bindings (the [test] or [calibrate] extra) is not installed")

STUB = Path(__file__).with_name("fake_libcuda.c")
MIB = 1 << 20


@pytest.fixture(scope="module")
def fake_driver_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build the stand-in libcuda.so.1")
    out = tmp_path_factory.mktemp("fakecuda")
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", str(out / "libcuda.so.1"), str(STUB)], check=True)
    return out


def run_with_fake_driver(lib_dir: Path, code: str) -> dict:
    """Run ``code`` in a fresh interpreter that loads the stand-in driver; it prints one JSON line."""
    prelude = textwrap.dedent("""
        import ctypes, json
        def live():
            lib = ctypes.CDLL("libcuda.so.1")
            v = [ctypes.c_int() for _ in range(4)]
            lib.fakecuda_live(*[ctypes.byref(x) for x in v])
            return dict(zip(("reservations", "handles", "mappings", "no_access"), [x.value for x in v]))
    """)
    env = dict(os.environ, LD_LIBRARY_PATH=str(lib_dir))
    r = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True,
                       env=env, cwd=Path(__file__).resolve().parents[2], timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("total,chunk", [(256 * MIB, 2 * MIB), (64 * MIB, 32 * MIB), (8 * MIB, 8 * MIB)])
def test_vmm_once_times_every_op_and_leaves_nothing_behind(fake_driver_dir, total, chunk):
    res = run_with_fake_driver(fake_driver_dir, f"""
        from warmsim.calibrate.harness.vmm import vmm_once
        from warmsim.calibrate.harness.device import VMM_OPS
        t = vmm_once(0, {total}, {chunk})
        print(json.dumps({{"ops": sorted(t), "want": sorted(VMM_OPS), "min": min(t.values()), "live": live()}}))
    """)
    assert res["ops"] == res["want"]
    assert res["min"] > 0
    assert res["live"] == {"reservations": 0, "handles": 0, "mappings": 0, "no_access": 0}


def test_vmm_once_refuses_a_chunk_off_the_granularity(fake_driver_dir):
    res = run_with_fake_driver(fake_driver_dir, """
        from warmsim.calibrate.harness.vmm import vmm_once
        try:
            vmm_once(0, 12 << 20, 3 << 20)
            print(json.dumps({"error": None}))
        except RuntimeError as e:
            print(json.dumps({"error": str(e), "live": live()}))
    """)
    assert "granularity" in res["error"]
    assert res["live"]["reservations"] == 0


def test_the_stand_in_driver_refuses_what_a_real_driver_refuses(fake_driver_dir):
    """The stub has teeth: mapping outside a reservation, freeing a mapped range and setting access on
    an unmapped range all fail, so the clean runs above are evidence."""
    res = run_with_fake_driver(fake_driver_dir, """
        from warmsim.calibrate.harness.vmm import _driver
        cu = _driver()
        cu.cuInit(0)
        prop = cu.CUmemAllocationProp()
        prop.type = cu.CUmemAllocationType.CU_MEM_ALLOCATION_TYPE_PINNED
        prop.location.type = cu.CUmemLocationType.CU_MEM_LOCATION_TYPE_DEVICE
        prop.location.id = 0
        err, h = cu.cuMemCreate(2 << 20, prop, 0)
        out = {"create": int(err)}
        out["map_unreserved"] = int(cu.cuMemMap(cu.CUdeviceptr(4096 << 20), 2 << 20, 0, h, 0)[0])
        err, base = cu.cuMemAddressReserve(2 << 20, 0, 0, 0)
        desc = cu.CUmemAccessDesc()
        desc.location.type = cu.CUmemLocationType.CU_MEM_LOCATION_TYPE_DEVICE
        desc.location.id = 0
        desc.flags = cu.CUmemAccess_flags.CU_MEM_ACCESS_FLAGS_PROT_READWRITE
        out["access_unmapped"] = int(cu.cuMemSetAccess(base, 2 << 20, [desc], 1)[0])
        out["map"] = int(cu.cuMemMap(base, 2 << 20, 0, h, 0)[0])
        out["free_mapped"] = int(cu.cuMemAddressFree(base, 2 << 20)[0])
        bad = cu.CUmemAllocationProp()  # type left unset: not a valid allocation
        out["create_bad_prop"] = int(cu.cuMemCreate(2 << 20, bad, 0)[0])
        print(json.dumps(out))
    """)
    assert res["create"] == 0 and res["map"] == 0
    assert res["map_unreserved"] != 0
    assert res["access_unmapped"] != 0
    assert res["free_mapped"] != 0
    assert res["create_bad_prop"] != 0
