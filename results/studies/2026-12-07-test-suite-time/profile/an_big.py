import json,glob,collections,sys
rows=[json.loads(l) for f in glob.glob(sys.argv[1]+'/big_*.jsonl') for l in open(f)]
byf=collections.defaultdict(collections.Counter)
for r in rows:
    f=r['test'].split('::')[0]; c=byf[f]
    c['wall']+=r['wall']; c['cpu']+=r['cpu']
    for e,d in r['events']:
        c[e]+=d; c[e+'#']+=1
print(f"{'wall':>6} {'cpu':>6} {'be':>6} {'#be':>4} {'trace':>6} {'mlir':>6} {'hit':>4} file")
tot=collections.Counter()
for f,c in sorted(byf.items(), key=lambda x:-x[1]['wall']):
    tot.update(c)
    print(f"{c['wall']:6.0f} {c['cpu']:6.0f} {c['backend_compile_duration']:6.0f} {c['backend_compile_duration#']:4d} {c['jaxpr_trace_duration']:6.0f} {c['jaxpr_to_mlir_module_duration']:6.0f} {c['cache_retrieval_time_sec#']:4d} {f}")
c=tot; print(f"{c['wall']:6.0f} {c['cpu']:6.0f} {c['backend_compile_duration']:6.0f} {c['backend_compile_duration#']:4d} {c['jaxpr_trace_duration']:6.0f} {c['jaxpr_to_mlir_module_duration']:6.0f} TOTAL")
