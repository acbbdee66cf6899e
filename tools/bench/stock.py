"""Stock mode (issue 20): per threshold spread, accuracy, processes and the spike events of every original
neuron against the default bundle and against the latch of the same integers, on the full test sets.
Run: .venv/bin/python tools/bench/stock.py (about 3 min on the 2-core machine); results in RESULTS.md."""
import numpy as np, tempfile, math, dataclasses, time
from snn_deploy.deploy import compile_network, export, load_graph
from snn_deploy.deploy.stages.verify import compare, judge
from snn_deploy.deploy.stages.stock import latched
from snn_deploy.models import zoo, data
from snn_deploy.targets import description, bitsim
for name, split in (("yinyang-ttfs", "yinyang:test"), ("digits-ttfs", "digits:test")):
    p = tempfile.mktemp(suffix=".nir"); export(zoo.load(name), p)
    net = load_graph(p); test = data.load(split)
    default = compile_network(net, description.load("loihi2"))
    c0 = compare(net, default, test.features, test.labels)
    m0 = judge(c0, net, default).to_dict()
    print(name, "default", m0["accuracy"], m0["agreement"])
    for spread in (1.0, 2.0, math.inf):
        b = compile_network(net, description.load("loihi2"), stock=True, threshold_spread=spread)
        same_ints = all(np.array_equal(getattr(b.network.population(p.name), k), getattr(p, k)) for p in default.network.populations for k in ("vth","du","dv","bias_mant"))
        t = time.time()
        c = compare(net, b, test.features, test.labels)
        m = judge(c, net, b).to_dict()
        ref = dataclasses.replace(b, network=latched(b.network), timing=dataclasses.replace(b.timing, padding_steps=0))
        r = bitsim.run(ref, c.inputs)
        eq = all(np.array_equal(c.record.spikes[p.name].events, r.spikes[p.name].events) for p in ref.network.populations)
        eqd = all(np.array_equal(c.record.spikes[p.name].events, c0.record.spikes[p.name].events) for p in default.network.populations)
        n = sum(len(r.spikes[p.name].events[0]) for p in ref.network.populations)
        print(name, spread, "processes", b.report.stock.processes, "same ints as default", same_ints, "acc", m["accuracy"], m["agreement"], "== latch", eq, "== default", eqd, "events", n, "sat", m["hardware_events"], round(time.time()-t,1))
