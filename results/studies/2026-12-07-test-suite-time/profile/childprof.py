import json, os, time, resource
import pytest
_out = open(f"{os.environ.get('PROFILE_DIR', '.')}/children_{os.environ.get('PYTEST_XDIST_WORKER','main')}.jsonl", "a")
def _c():
    r = resource.getrusage(resource.RUSAGE_CHILDREN); s = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime, s.ru_utime + s.ru_stime
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    t = time.time(); c0, s0 = _c()
    yield
    c1, s1 = _c()
    _out.write(json.dumps({"test": item.nodeid, "wall": time.time() - t, "children": c1 - c0, "self": s1 - s0}) + "\n"); _out.flush()
