import json, os, time, collections
import jax.monitoring
_acc = collections.Counter()
def _listener(event, duration, **kw):
    _acc[event] += duration
    _acc[event + "#n"] += 1
jax.monitoring.register_event_duration_secs_listener(_listener)
_out = open(f"{os.environ.get('PROFILE_DIR', '.')}/jax_events_{os.environ.get('PYTEST_XDIST_WORKER','main')}.jsonl", "a")
import pytest
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _acc.clear(); t = time.time(); c = time.process_time()
    yield
    _out.write(json.dumps({"test": item.nodeid, "wall": time.time() - t, "cpu": time.process_time() - c, **_acc}) + "\n"); _out.flush()
