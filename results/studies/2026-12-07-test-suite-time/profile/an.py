import json, glob, collections, sys
rows=[json.loads(l) for f in glob.glob(sys.argv[1] + '/jax_events_gw*.jsonl') for l in open(f)]
keys=collections.Counter()
for r in rows:
    for k,v in r.items():
        if k not in ('test',): keys[k]+=v
for k,v in sorted(keys.items()): print(f"{v:10.1f} {k}")
print(len(rows))
tr='/jax/core/compile/jaxpr_trace_duration'; be='/jax/core/compile/backend_compile_duration'; ml='/jax/core/compile/jaxpr_to_mlir_module_duration'
byfile=collections.defaultdict(lambda: collections.Counter())
for r in rows:
    f=r['test'].split('::')[0]
    byfile[f]['wall']+=r['wall']; byfile[f]['cpu']+=r['cpu']; byfile[f]['trace']+=r.get(tr,0); byfile[f]['backend']+=r.get(be,0); byfile[f]['mlir']+=r.get(ml,0)
print(f"{'wall':>7} {'cpu':>7} {'trace':>7} {'mlir':>6} {'backend':>7} file")
for f,c in sorted(byfile.items(), key=lambda x:-x[1]['wall'])[:30]:
    print(f"{c['wall']:7.1f} {c['cpu']:7.1f} {c['trace']:7.1f} {c['mlir']:6.1f} {c['backend']:7.1f} {f}")
