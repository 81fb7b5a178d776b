"""pytest plugin: per test, each backend compile/trace/lower event over 1 s, and cache hits."""
import json, os, time
import jax
import pytest
_events = []
def _listener(event, duration, **kw):
    if duration > 0.5 and event in ("/jax/core/compile/backend_compile_duration", "/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/jaxpr_to_mlir_module_duration", "/jax/compilation_cache/cache_retrieval_time_sec"):
        _events.append((event.rsplit("/", 1)[-1], round(duration, 2)))
jax.monitoring.register_event_duration_secs_listener(_listener)
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _events.clear(); t = time.perf_counter(); c = time.process_time()
    yield
    w = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with open(os.path.join(os.environ["PROFILE_DIR"], f"big_{w}.jsonl"), "a") as f:
        f.write(json.dumps({"test": item.nodeid, "wall": time.perf_counter() - t, "cpu": time.process_time() - c, "events": list(_events)}) + "\n")
